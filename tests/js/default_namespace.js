// The official client as a new user configures it: no `namespace`, so it calls with `_`.
// Usage: node default_namespace.js http://127.0.0.1:PORT uuid:key COUNT
// Invokes COUNT different actions, blocking; prints how many answered.
'use strict';
const openwhisk = require('openwhisk');

async function main() {
  const [apihost, apiKey, count] = process.argv.slice(2);
  const ow = openwhisk({ apihost, api_key: apiKey });
  let answered = 0;
  for (let i = 0; i < Number(count); i++) {
    await ow.actions.invoke({ name: `action-${i}`, blocking: true, result: true });
    answered++;
  }
  process.stdout.write(JSON.stringify({ answered }));
}

main().catch((err) => {
  process.stderr.write(`client failed: ${err.stack || err}\n`);
  process.exit(1);
});
