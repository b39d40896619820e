// Calls into a runtime wasm with chopsticks' executor, without any node or chain.
// Used by genesis.mjs; each script is one short-lived process run by
// pipeline/executor.py, which reads the JSON it writes to --out.
import { readFile, writeFile } from 'node:fs/promises';
import { compactFromU8a, compactToU8a, hexToU8a, u8aConcat, u8aToHex, u8aToU8a } from '@polkadot/util';
import { destroyWorker, runTask } from '@acala-network/chopsticks-core/wasm-executor/index';

/** Storage seen by a runtime call that starts from nothing: every read misses, so writes stay in the diff. */
const emptyStorage = {
  getStorage: async () => undefined,
  getNextKey: async () => undefined,
  offchainGetStorage: async () => undefined,
  offchainTimestamp: async () => Date.now(),
  offchainRandomSeed: async () => '0x' + '00'.repeat(32),
  offchainSubmitTransaction: async () => false,
};

export class RuntimeCallError extends Error {}

/** The wasm file as 0x-hex, as the executor and `:code` want it. */
export const readWasm = async (path) => u8aToHex(await readFile(path));

/** Run one runtime API method (args: SCALE bytes); returns the SCALE result and the storage it wrote. */
export const callRuntime = async (wasm, method, args = new Uint8Array()) => {
  const response = await runTask(
    {
      wasm,
      calls: [[method, [u8aToHex(args)]]],
      mockSignatureHost: false,
      allowUnresolvedImports: false,
      runtimeLogLevel: 0,
    },
    emptyStorage,
  );
  if ('Error' in response) throw new RuntimeCallError(`${method}: ${response.Error}`);
  return { result: hexToU8a(response.Call.result), storageDiff: response.Call.storageDiff };
};

// --- the few SCALE shapes these APIs use ---
export const encodeBytes = (bytes) => u8aConcat(compactToU8a(bytes.length), bytes);
export const encodeOptionString = (s) =>
  s == null ? new Uint8Array([0]) : u8aConcat(new Uint8Array([1]), encodeBytes(u8aToU8a(s)));
/** Decode a Vec<u8>; returns [bytes, bytesConsumed]. */
export const decodeBytes = (u8a) => {
  const [offset, length] = compactFromU8a(u8a);
  const end = offset + Number(length);
  if (end > u8a.length) throw new RuntimeCallError('truncated SCALE bytes');
  return [u8a.subarray(offset, end), end];
};
export const decodeOptionBytes = (u8a) => {
  if (u8a[0] === 0) return null;
  if (u8a[0] !== 1) throw new RuntimeCallError(`bad Option tag ${u8a[0]}`);
  return decodeBytes(u8a.subarray(1))[0];
};

/**
 * Run `main` as a CLI: its JSON result goes to the --out file (stdout may carry executor logs),
 * a failure ends stderr with a one-line message, and exit code 2.
 */
export const runCli = async (main, out) => {
  try {
    const result = await main();
    await writeFile(out, JSON.stringify(result));
    await destroyWorker();
    process.exit(0);
  } catch (error) {
    // the caller shows the last line: the stack (for a bug report) first, the message last
    if (!(error instanceof RuntimeCallError)) process.stderr.write(`${error?.stack}\n`);
    process.stderr.write(`${error?.message ?? error}\n`.replace(/\n(?!$)/g, ' '));
    process.exit(2);
  }
};
