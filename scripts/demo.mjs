// `just demo`: oidc-provider on :9000, the echo app on :9100 and Envoy with Portcullis on :8080 using
// envoy/envoy.yaml exactly as committed. Ctrl-C stops everything.
import path from 'node:path';

import { get } from '../tests/lib/http.mjs';
import { ROOT, sleep, startEcho, startIdp } from '../tests/lib/stack.mjs';
import { DEMO } from '../tests/lib/envoy-config.mjs';
import { spawn } from 'node:child_process';

const app = `http://localhost:${DEMO.listen}`;
await startIdp({ port: DEMO.idp, origins: [app] });
await startEcho({ port: DEMO.upstream });
const envoy = spawn(path.join(ROOT, '.venv/bin/envoy'), ['-c', 'envoy/envoy.yaml', '--concurrency', '2', '--log-level', 'warn', '--component-log-level', 'wasm:info'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
process.on('exit', () => envoy.kill('SIGKILL'));
for (let i = 0; i < 100; i += 1) {
  try { if ((await get(`${app}/oauth2/ready`)).status === 200) break; } catch { /* starting */ }
  await sleep(200);
}
console.log(`
  Portcullis demo is up.

    Open      ${app}/            (a protected echo app)
    Sign in   any username, e.g. alice (any password); alice is in groups admins,staff
    Sign out  ${app}/oauth2/sign_out
    Also      ${app}/oauth2/userinfo   ${app}/public/anything (no login)
    Health    ${app}/ping   ${app}/ready
    Metrics   http://127.0.0.1:${DEMO.admin}/stats/prometheus   (decisions are logged below)

  Ctrl-C to stop.
`);
await new Promise(() => {});
