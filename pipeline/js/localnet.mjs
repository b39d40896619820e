// Serve one local network with chopsticks' own pieces, started by pipeline/localnet.py:
//   node localnet.mjs --config chopsticks.json
// The config is chopsticks' (host, port, genesis | endpoint, db, resume, build-block-mode,
// runtime-log-level). Why not the chopsticks CLI:
// - with --genesis and --db, chopsticks builds a fresh block #1 on every start and saves it over
//   the stored #1 (its db keeps one block per number). The resumed chain then no longer links to
//   genesis: chain_getBlockHash(0) answers the old #1's hash, and every signature made with that
//   "genesis hash" is refused. Here the db is attached after that first block, so the stored
//   chain stays intact.
// - its server moves to port+1..port+9 when the port is taken; a network must be where its
//   environment says, so a different port is an error here.
// - `resume: true` cannot be given on its command line (yargs turns it into a string).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { GenesisProvider, defaultLogger, setup } from '@acala-network/chopsticks';
import { SqliteDatabase } from '@acala-network/chopsticks-db';

const dist = import.meta.resolve('@acala-network/chopsticks'); // .../dist/esm/index.js
const { createServer } = await import(new URL('./server.js', dist));
const { handler } = await import(new URL('./rpc/index.js', dist));

const log = defaultLogger.child({ name: 'pipeline-localnet' });
const { values } = parseArgs({ options: { config: { type: 'string' } } });
const config = JSON.parse(readFileSync(values.config, 'utf8'));

const fail = (message) => {
  process.stderr.write(`localnet.mjs: ${message}\n`);
  process.exit(3);
};

const start = async () => {
  const chain = await setup({
    genesis: config.genesis ? new GenesisProvider(JSON.parse(readFileSync(config.genesis, 'utf8'))) : undefined,
    endpoint: config.endpoint,
    block: config.block,
    buildBlockMode: config['build-block-mode'],
    runtimeLogLevel: config['runtime-log-level'],
  });
  if (config.db) {
    chain.db = new SqliteDatabase(config.db);
    const highest = config.resume ? await chain.db.queryHighestBlock() : null;
    if (highest) {
      const block = await chain.loadBlockFromDB(highest.number);
      if (!block) fail(`cannot load block #${highest.number} from ${config.db}`);
      await chain.setHead(block);
      log.info(`resumed at #${highest.number} ${highest.hash} from ${config.db}`);
    } else {
      await chain.saveBlockToDB(chain.head);
    }
  }
  const { addr, port } = await createServer(handler({ chain }), config.port, config.host);
  if (port !== config.port) fail(`port ${config.port} is taken (chopsticks moved to ${port})`);
  log.info(`${await chain.api.getSystemChain()} at #${chain.head.number}: RPC listening on ws://${addr}`);
  const stop = async () => {
    await chain.close(); // flushes and closes the db
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
};

start().catch((error) => fail(error?.stack ?? String(error)));
