// PGlite in a worker thread: the embedded database computes on its own core while the server's
// event loop parses HTTP and JSON. Messages: {id, op: 'open'|'query'|'exec'|'close', ...} → {id, rows|error}.
import { parentPort } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

let db;
const unsubs = new Map();

parentPort.on('message', async (m) => {
  try {
    let result;
    switch (m.op) {
      case 'open':
        db = await PGlite.create(m.dataDir ?? 'memory://');
        break;
      case 'query':
        result = (await db.query(m.text, m.params ?? [])).rows;
        break;
      case 'exec':
        await db.exec(m.text);
        break;
      case 'listen':
        unsubs.set(
          m.channel,
          await db.listen(m.channel, (payload) => parentPort.postMessage({ notify: m.channel, payload })),
        );
        break;
      case 'close':
        for (const u of unsubs.values()) await u();
        await db?.close();
        break;
      default:
        throw new Error(`unknown op ${m.op}`);
    }
    parentPort.postMessage({ id: m.id, result });
  } catch (e) {
    // Keep what the store looks at (the SQLSTATE code) across the thread boundary.
    parentPort.postMessage({ id: m.id, error: { message: e?.message ?? String(e), code: e?.code } });
  }
});
