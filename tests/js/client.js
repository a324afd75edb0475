// Drives switchyard with the official OpenWhisk JavaScript client, as an application would.
// Usage: node client.js http://127.0.0.1:PORT uuid:key
// Prints one JSON object with what each call returned; the Rust test asserts on it.
'use strict';
const openwhisk = require('openwhisk');

async function main() {
  const [apihost, apiKey] = process.argv.slice(2);
  const ow = openwhisk({ apihost, api_key: apiKey, namespace: '_' });
  const out = {};

  out.blocking = await ow.actions.invoke({ name: 'hello', blocking: true, result: true, params: { name: 'Ada' } });
  out.packaged = await ow.actions.invoke({ name: 'img/resize', blocking: true, result: true });
  const accepted = await ow.actions.invoke({ name: 'hello' });
  out.nonBlockingId = accepted.activationId;
  const record = await ow.actions.invoke({ name: 'hello', blocking: true });
  out.recordStatus = record.response.status;
  out.recordId = record.activationId;
  out.fetched = (await ow.activations.get({ name: record.activationId })).activationId;
  await ow.actions.create({ name: 'stored', action: 'function main() { return {}; }' });
  out.storedName = (await ow.actions.get({ name: 'stored' })).name;
  out.fired = await ow.triggers.invoke({ name: 'tick' });
  try {
    await ow.actions.invoke({ name: 'broken', blocking: true });
    out.broken = 'succeeded';
  } catch (err) {
    out.broken = { status: err.statusCode, responseStatus: err.error && err.error.response && err.error.response.status };
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  process.stderr.write(`client failed: ${err.stack || err}\n`);
  process.exit(1);
});
