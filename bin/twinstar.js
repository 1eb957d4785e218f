#!/usr/bin/env node
// The compiled CLI lives in dist/ (npm run build; npm install builds it through "prepare").
import('../dist/src/cli/index.js').then(
  (cli) => cli.main(process.argv.slice(2)),
  (error) => {
    console.error(`twinstar: cannot load the compiled CLI (${error.message}); run \`npm run build\` first`);
    process.exit(1);
  },
);
