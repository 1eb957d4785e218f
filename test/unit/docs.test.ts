/** The generated parts of docs/ match the code they are generated from (run `npm run docs`). */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { binaryStarGenerated, configurationDoc, withGenerated } from '../../scripts/gen-docs.js';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('generated docs', () => {
  it('docs/configuration.md lists every setting of the schema as it is now', () => {
    expect(read('docs/configuration.md')).to.equal(configurationDoc());
  });

  it('docs/binary-star.md shows the FSM table as it is now', () => {
    const doc = read('docs/binary-star.md');
    expect(doc).to.equal(withGenerated(doc, binaryStarGenerated()));
  });
});
