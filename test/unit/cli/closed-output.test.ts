/**
 * endOnClosedOutput (src/cli/index.ts): `twinstar dump | head` ends quietly with status 141 once
 * the reader has gone (EPIPE), instead of an unhandled 'error' event and its stack trace.
 */
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { CLOSED_OUTPUT_STATUS, endOnClosedOutput } from '../../../src/cli/index.js';

const errno = (code: string) => Object.assign(new Error(`write ${code}`), { code });

describe('cli: a closed output (EPIPE)', () => {
  it('ends the command with status 141 when a write finds the reader gone', () => {
    const stream = new EventEmitter();
    const exits: number[] = [];
    endOnClosedOutput(stream as unknown as NodeJS.WriteStream, (code) => exits.push(code));
    stream.emit('error', errno('EPIPE'));
    expect(exits).to.deep.equal([CLOSED_OUTPUT_STATUS]);
    expect(CLOSED_OUTPUT_STATUS).to.equal(128 + 13); // SIGPIPE is 13
  });

  it('leaves any other error of the stream as it was: thrown', () => {
    const stream = new EventEmitter();
    const exits: number[] = [];
    endOnClosedOutput(stream as unknown as NodeJS.WriteStream, (code) => exits.push(code));
    expect(() => stream.emit('error', errno('EIO'))).to.throw('write EIO');
    expect(exits).to.deep.equal([]);
  });
});
