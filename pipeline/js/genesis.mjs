// Build a raw chain spec from a runtime wasm and one of its genesis presets, with no node binary:
// GenesisBuilder_get_preset(None) is the full default config, get_preset(Some(name)) a patch on it;
// build_state needs the merged whole ("missing field system" for a bare patch). What build_state
// writes, plus `:code`, is the genesis storage.
import { parseArgs } from 'node:util';
import { u8aToString } from '@polkadot/util';
import { getRuntimeVersion } from '@acala-network/chopsticks-core/wasm-executor/index';
import { mergeJson } from './merge.mjs';
import {
  RuntimeCallError, callRuntime, decodeBytes, decodeOptionBytes, encodeBytes, encodeOptionString,
  readWasm, runCli,
} from './runtime.mjs';

const CODE_KEY = '0x3a636f6465'; // ":code"
const CHILD_PREFIX = '0x3a6368696c645f73746f726167653a'; // ":child_storage:"

const { values: opts } = parseArgs({
  options: {
    wasm: { type: 'string' },
    preset: { type: 'string', default: 'development' },
    out: { type: 'string' },
    name: { type: 'string' },
    id: { type: 'string' },
    'token-symbol': { type: 'string', default: 'UNIT' },
    'token-decimals': { type: 'string', default: '12' },
    ss58: { type: 'string', default: '42' },
  },
});

const preset = async (wasm, name) => {
  let result;
  try {
    ({ result } = await callRuntime(wasm, 'GenesisBuilder_get_preset', encodeOptionString(name)));
  } catch (error) {
    if (error instanceof RuntimeCallError && /not found/i.test(error.message)) {
      throw new RuntimeCallError('the runtime has no GenesisBuilder_get_preset (GenesisBuilder API v2): build it with genesis presets');
    }
    throw error;
  }
  const json = decodeOptionBytes(result);
  if (json === null) {
    throw new RuntimeCallError(name === null
      ? 'the runtime has no default genesis config (GenesisBuilder_get_preset(None) is None)'
      : `the runtime has no genesis preset "${name}"`);
  }
  return JSON.parse(u8aToString(json));
};

const buildState = async (wasm, config) => {
  const arg = encodeBytes(new TextEncoder().encode(JSON.stringify(config)));
  const { result, storageDiff } = await callRuntime(wasm, 'GenesisBuilder_build_state', arg);
  if (result[0] !== 0) {
    throw new RuntimeCallError(`GenesisBuilder_build_state refused the config: ${u8aToString(decodeBytes(result.subarray(1))[0])}`);
  }
  const top = {};
  for (const [key, value] of storageDiff) {
    if (value === null) continue;
    if (key.startsWith(CHILD_PREFIX)) throw new RuntimeCallError(`genesis writes child storage (${key}), which chopsticks cannot load`);
    top[key] = value;
  }
  return top;
};

const main = async () => {
  const wasm = await readWasm(opts.wasm);
  const version = await getRuntimeVersion(wasm);
  const config = mergeJson(await preset(wasm, null), await preset(wasm, opts.preset));
  const top = await buildState(wasm, config);
  top[CODE_KEY] = wasm;
  const sorted = Object.fromEntries(Object.keys(top).sort().map((k) => [k, top[k]]));
  return {
    name: opts.name ?? `${version.specName} ${opts.preset}`,
    id: opts.id ?? `${version.specName}_${opts.preset}`,
    chainType: opts.preset === 'development' ? 'Development' : 'Local',
    bootNodes: [],
    telemetryEndpoints: null,
    protocolId: null,
    properties: {
      tokenSymbol: opts['token-symbol'],
      tokenDecimals: Number(opts['token-decimals']),
      ss58Format: Number(opts.ss58),
    },
    codeSubstitutes: {},
    genesis: { raw: { top: sorted, childrenDefault: {} } },
  };
};

await runCli(main, opts.out);
