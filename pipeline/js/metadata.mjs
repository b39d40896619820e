// Read a runtime's metadata straight from its wasm: the versions it offers and the newest of
// v15/v14, or the one asked for with --version (the legacy Metadata_metadata for runtimes without
// versioned metadata).
// Output: {"versions": [...], "version": N, "metadata": "0x6d657461..."} (the prefixed metadata blob).
import { parseArgs } from 'node:util';
import { u8aToHex } from '@polkadot/util';
import {
  RuntimeCallError, callRuntime, decodeBytes, decodeOptionBytes, decodeVecU32, encodeU32, readWasm,
  runCli,
} from './runtime.mjs';

const PREFERRED = [15, 14];

const { values: opts } = parseArgs({
  options: { wasm: { type: 'string' }, version: { type: 'string' }, out: { type: 'string' } },
});

const versions = async (wasm) => {
  try {
    return decodeVecU32((await callRuntime(wasm, 'Metadata_metadata_versions')).result);
  } catch (error) {
    if (error instanceof RuntimeCallError) return [];
    throw error;
  }
};

const main = async () => {
  const wasm = await readWasm(opts.wasm);
  const offered = await versions(wasm);
  const wanted = opts.version ? [Number(opts.version)] : PREFERRED;
  for (const version of wanted.filter((v) => offered.includes(v))) {
    const { result } = await callRuntime(wasm, 'Metadata_metadata_at_version', encodeU32(version));
    const metadata = decodeOptionBytes(result);
    if (metadata !== null) return { versions: offered, version, metadata: u8aToHex(metadata) };
  }
  if (opts.version && offered.length) {
    throw new RuntimeCallError(`the runtime offers metadata versions ${offered.join(', ')}, not ${opts.version}`);
  }
  const { result } = await callRuntime(wasm, 'Metadata_metadata');
  const metadata = decodeBytes(result)[0];
  return { versions: offered, version: metadata[4], metadata: u8aToHex(metadata) };
};

await runCli(main, opts.out);
