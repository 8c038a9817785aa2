// The playground page: collects the form into the core's request document, calls the core's
// `explain` (WebAssembly, wasm-bindgen), and shows the explanation it returns. No decision is made
// here: everything shown comes from the JSON the core returns.
import init, { explain } from './pkg/portcullis_playground.js';

const NAVIGATION = 'accept: text/html\nsec-fetch-mode: navigate';
const PRESETS = {
  'admin-no-group': { method: 'GET', url: 'http://app.example.com/admin/users', headers: NAVIGATION, user: 'bob', email: 'bob@example.com', groups: 'dev' },
  'admin-group': { method: 'GET', url: 'http://app.example.com/admin/users', headers: NAVIGATION, user: 'alice', email: 'alice@example.com', groups: 'platform-admins, dev' },
  'no-session': { method: 'GET', url: 'http://app.example.com/reports/q3', headers: NAVIGATION, user: '' },
  xhr: { method: 'GET', url: 'http://app.example.com/reports/q3.json', headers: 'accept: application/json\nx-requested-with: XMLHttpRequest', user: '' },
  public: { method: 'GET', url: 'http://app.example.com/static/app.js', headers: 'x-forwarded-user: admin\naccept: */*', user: '' },
};

const $ = (id) => document.getElementById(id);
const show = (id, on) => { $(id).hidden = !on; };
const text = (id, value) => { $(id).textContent = value ?? ''; };

/** The form as the core's request document (conversion only). */
function requestDocument() {
  const doc = { method: $('method').value, url: $('url').value, headers: $('headers').value };
  if ($('signed-in').checked && $('user').value.trim()) {
    doc.session = { user: $('user').value, groups: $('groups').value };
    if ($('email').value.trim()) doc.session.email = $('email').value;
  }
  return doc;
}

function render(ex) {
  text('raw', JSON.stringify(ex, null, 2));
  show('loading', false);
  show('config-error', Boolean(ex.config_error));
  show('input-error', !ex.config_error && Boolean(ex.input_error));
  show('decision', Boolean(ex.decision));
  if (ex.config_error) {
    text('error-field', ex.config_error.field || '(the JSON itself: see the message)');
    text('error-problem', ex.config_error.problem || '');
    text('error-message', ex.config_error.message);
    return;
  }
  if (ex.input_error) {
    text('input-error-message', ex.input_error);
    return;
  }
  const d = ex.decision;
  const r = ex.route || {};
  $('verdict').className = `verdict ${d.outcome}`;
  text('verdict', d.status ? `${d.status} · ${d.outcome.replace('_', ' ')}` : d.outcome);
  text('summary', d.summary);
  text('rule', r.endpoint ? `endpoint ${r.endpoint} (no rule consulted)`
    : r.rule ? `${r.rule}${r.action ? ` — ${r.action}${r.accept ? ` (${r.accept})` : ''}` : ''}${
      r.requirements && Object.keys(r.requirements).length ? `, requires ${JSON.stringify(r.requirements)}` : ''}`
      : r.unroutable || '');
  text('outcome', d.outcome);
  text('status', d.status ?? 'forwarded upstream');
  text('reason', d.reason ?? '');
  text('message', d.message ?? '');

  const req = d.requirement;
  show('requirement-label', Boolean(req));
  show('requirement', Boolean(req));
  if (req) {
    text('requirement', `${req.field} (${req.code}): requires ${req.required.join(', ') || '—'}${
      req.has ? `; the session has ${req.has.join(', ') || 'none'}` : ''}${req.detail ? ` (${req.detail})` : ''}`);
  }
  const s = ex.request && ex.request.session;
  show('session-label', Boolean(s));
  show('session', Boolean(s));
  if (s) {
    text('session', `${s.user}${s.email ? ` <${s.email}>` : ''}, groups ${s.groups.join(', ') || 'none'}; cookie ${
      s.cookies.join(', ')} sealed with key ${s.sealed_with_key}`);
  }

  show('upstream-block', Boolean(d.upstream_headers));
  if (d.upstream_headers) {
    text('upstream', d.upstream_headers.join('\n') || '(no headers)');
    text('stripped', d.stripped_headers && d.stripped_headers.length
      ? `Not passed on as the client sent them: ${d.stripped_headers.join(', ')}.` : '');
  }
  const resp = d.response_headers || [];
  show('response-block', resp.length > 0);
  text('response', resp.join('\n'));
  show('body-block', Boolean(d.body));
  text('body', d.body);
  const notes = $('notes');
  notes.replaceChildren(...(ex.notes || []).map((n) => {
    const li = document.createElement('li');
    li.textContent = n;
    return li;
  }));
}

function run() {
  render(JSON.parse(explain($('config').value, JSON.stringify(requestDocument()))));
}

function applyPreset(name) {
  const p = PRESETS[name];
  $('method').value = p.method;
  $('url').value = p.url;
  $('headers').value = p.headers;
  $('signed-in').checked = Boolean(p.user);
  if (p.user) {
    $('user').value = p.user;
    $('email').value = p.email || '';
    $('groups').value = p.groups || '';
  }
  run();
}

// The example configuration, also what the README's `explain` transcript uses. Its cookie key is a
// test key.
$('config').value = await (await fetch('example.json')).text();
await init();
$('explain').addEventListener('click', run);
document.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) run();
});
for (const b of document.querySelectorAll('[data-preset]')) {
  b.addEventListener('click', () => applyPreset(b.dataset.preset));
}
document.body.dataset.ready = 'true';
run();
