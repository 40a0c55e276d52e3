// Syndicast ops console: plain ES module, no build step, talks only to this origin's REST API.
// The API key lives in sessionStorage (this tab only) and goes out as a bearer header, never in a URL.

const KEY = 'syndicast.apiKey';
const PLATFORMS = ['youtube', 'tiktok', 'whatnot', 'bambuser', 'facebook'];
const MIRROR_STATES = ['pending', 'provisioning', 'ready', 'live', 'ended', 'cancelled', 'failed', 'action_required'];
const ICONS = { live: '●', ready: '◆', pending: '○', provisioning: '◌', ended: '■', cancelled: '⊘', failed: '✖', action_required: '⚠' };

const $ = (sel) => document.querySelector(sel);
const state = { me: null, board: null, filters: { partner: '', platform: '', state: '', needs: false, q: '' }, stream: null, detail: null, failedView: null, pages: {} };

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const key = () => sessionStorage.getItem(KEY);

/**
 * An id as one segment of an API path. `.` and `..` are valid ids, but URL normalisation (fetch's URL
 * parser) takes such a segment, also written `%2E`, for a step in the path and removes it: the request
 * for show `..` went to its partner's URL. Their dots go as `%252E`, which the API reads as `.` (no id
 * has a `%`).
 */
const seg = (id) => (id === '.' || id === '..' ? id.replaceAll('.', '%252E') : encodeURIComponent(id));

async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${key()}`);
  if (init.json !== undefined) headers.set('content-type', 'application/json');
  const res = await fetch(path, { ...init, headers, ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}) });
  if (res.status === 401) {
    await signOutRefused(res);
    throw new Error('unauthorized');
  }
  const type = res.headers.get('content-type') ?? '';
  const body = type.includes('json') ? await res.json() : null;
  if (!res.ok) throw new Error(body?.detail ?? `${res.status} ${res.statusText}`);
  return body;
}

function ago(iso) {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/**
 * An amount in minor units, `minorUnits` being the currency's ISO 4217 exponent as the API gives it (the
 * browser's own digits for a currency are CLDR's display digits, which differ for some: HUF 0, not 2).
 */
function money(amount, currency, minorUnits) {
  const digits = Number.isInteger(minorUnits) ? minorUnits : 2;
  const f = new Intl.NumberFormat(undefined, { style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits });
  return f.format(amount / 10 ** digits);
}

const isOperator = () => state.me && (state.me.role === 'operator' || state.me.role === 'admin');

// ---------------------------------------------------------------- sign-in / sign-out

/** A refused sign-in's reason (the API's detail) for a person: a revoked or expired key is not a mistyped one. */
const SIGN_IN_REFUSED = {
  'this API key was revoked': 'That key was revoked: ask an admin for a new one.',
  'this API key has expired': 'That key has expired: ask an admin for a new one.',
};
const refusal = (detail, otherwise) => (Object.hasOwn(SIGN_IN_REFUSED, detail ?? '') ? SIGN_IN_REFUSED[detail] : otherwise);

// The last sign-out's DELETE: a sign-in waits for it, so a late answer cannot clear the new cookie.
let signingOut = Promise.resolve();

async function signIn(k) {
  await signingOut;
  const res = await fetch('/v1/ops/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: k }) });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(res.status === 401 ? refusal(body.detail, 'That key is not known.') : (body.detail ?? `sign-in failed (${res.status})`));
  }
  sessionStorage.setItem(KEY, k);
  state.me = await res.json();
}

/**
 * A 401 while signed in (a call, the stream, a session renewal): signs out saying why as the sign-in
 * does. It said "Your key is no longer accepted" to an operator whose key had been revoked or had expired.
 */
async function signOutRefused(res) {
  const body = await res.json().catch(() => null);
  signOut(refusal(body?.detail, 'Your key is no longer accepted: sign in again.'));
}

function signOut(message = '') {
  sessionStorage.removeItem(KEY);
  state.me = null;
  state.board = null;
  state.stream?.abort();
  state.stream = null;
  state.failedView = null;
  signingOut = fetch('/v1/ops/session', { method: 'DELETE' }).then(() => undefined, () => undefined);
  $('#nav').hidden = true;
  $('#who').hidden = true;
  $('#lost').hidden = true;
  $('#view').hidden = true;
  $('#sign-in').hidden = false;
  $('#sign-in-error').textContent = message;
  $('#key').value = '';
}

/**
 * Who is signed in, and the Queues link for an admin. After a reload the tab has its key but not yet
 * who it is: the first board says (the header stayed empty and an admin's Queues link hidden).
 */
function showWho() {
  $('#me').textContent = state.me ? `${state.me.role}${state.me.partnerId ? ` · ${state.me.partnerId}` : ''}` : '';
  $('#queues-link').hidden = state.me?.role !== 'admin';
}

function started() {
  $('#sign-in').hidden = true;
  $('#nav').hidden = false;
  $('#who').hidden = false;
  $('#view').hidden = false;
  showWho();
  startStream();
  route();
}

// ---------------------------------------------------------------- live stream (SSE over fetch)

function setLive(ok, text) {
  const el = $('#live');
  el.textContent = text;
  el.className = `live ${ok ? 'ok' : 'down'}`;
  const lost = $('#lost');
  lost.hidden = ok;
  lost.textContent = ok ? '' : `Live updates lost: ${text}. The board below may be out of date; reconnecting automatically.`;
}

function startStream() {
  state.stream?.abort();
  const ctl = new AbortController();
  state.stream = ctl;
  let attempt = 0;
  const run = async () => {
    while (!ctl.signal.aborted) {
      try {
        const res = await fetch('/v1/ops/stream', { headers: { authorization: `Bearer ${key()}`, accept: 'text/event-stream' }, signal: ctl.signal });
        if (res.status === 401) return await signOutRefused(res);
        if (res.status === 429) {
          // This key holds as many live streams as it may (other tabs): wait as long as the server asks.
          const body = await res.json().catch(() => null);
          throw Object.assign(new Error(body?.detail ?? 'too many live streams for this key'), { retryAfterMs: (Number(res.headers.get('retry-after')) || 5) * 1000 });
        }
        // Said as the API says it (a problem's detail): with storage down a key's check is a 503 before
        // the stream opens, and a page (re)loaded during the outage said only "stream answered 503".
        if (!res.ok || !res.body) {
          const body = await res.json().catch(() => null);
          throw new Error(typeof body?.detail === 'string' ? body.detail : `stream answered ${res.status}`);
        }
        attempt = 0;
        setLive(true, 'Live');
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            onMessage(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
        throw new Error('the server closed the connection');
      } catch (err) {
        if (ctl.signal.aborted) return;
        attempt += 1;
        setLive(false, `disconnected (${err.message || err}), retry ${attempt}`);
        await new Promise((r) => setTimeout(r, Math.max(err.retryAfterMs ?? 0, Math.min(5000, 500 * attempt))));
      }
    }
  };
  void run();
}

function onMessage(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
  }
  if (!data.length) return;
  const payload = JSON.parse(data.join('\n'));
  if (event === 'board') {
    state.board = payload;
    state.me = payload.me;
    showWho();
    setLive(true, `Live · updated ${new Date(payload.generatedAt).toLocaleTimeString()}`);
    if (currentView() === 'board') renderBoard();
    if (currentView() === 'show') refreshDetail();
    if (state.failedView && state.failedView === currentView()) route();
  } else if (event === 'problem') {
    setLive(false, payload.detail);
  }
}

// ---------------------------------------------------------------- routing

function currentView() {
  const hash = location.hash || '#/';
  if (hash.startsWith('#/show/')) return 'show';
  if (hash === '#/reconciliations') return 'reconciliations';
  if (hash === '#/endpoints') return 'endpoints';
  return 'board';
}

function route() {
  if (!key()) return;
  for (const a of document.querySelectorAll('#nav a')) a.removeAttribute('aria-current');
  const view = currentView();
  if (state.failedView !== view) state.failedView = null;
  const current = document.querySelector(`#nav a[href="${view === 'board' || view === 'show' ? '#/' : `#/${view}`}"]`);
  current?.setAttribute('aria-current', 'page');
  if (view === 'board') renderBoard();
  else if (view === 'show') {
    // A cut or mistyped address (`%E0`) is no show: decodeURIComponent threw, uncaught, and the page
    // kept the previous view under the new address.
    let ids;
    try {
      ids = location.hash.split('/').slice(2, 4).map(decodeURIComponent);
    } catch {
      ids = [];
    }
    const [partnerId, showId] = ids;
    if (!partnerId || !showId) {
      state.detail = null;
      return $('#view').replaceChildren(h('p', { class: 'error', role: 'alert' }, 'This address names no show: open one from the board.'), h('p', {}, h('a', { href: '#/' }, '← Board')));
    }
    state.detail = { partnerId, showId, data: null };
    $('#view').replaceChildren(h('p', {}, 'Loading…'));
    void refreshDetail();
  } else if (view === 'reconciliations') void renderReconciliations();
  else void renderEndpoints();
}

// ---------------------------------------------------------------- board

function tile(row, m) {
  // The tooltip's id, one per mirror: ids have no '/' (nor whitespace, which an IDREF cannot hold). Made
  // with '_' for every '.', ':' and the '-' between the parts, shows `x.y` and `x_y` (or partner `a-b`'s
  // `c` and `a`'s `b-c`) had one id, and the second tile was described by the first one's error.
  const tipId = `tip/${row.partnerId}/${row.showId}/${m.targetId}`;
  const relay = m.relay ? `relay ${m.relay.state ?? '?'}${typeof m.relay.bitrateKbps === 'number' ? ` · ${m.relay.bitrateKbps} kbps` : ''}` : null;
  const readiness = m.readiness ? `readiness ${m.readiness.state}` : null;
  const tip = [m.lastError ? `Last error: ${m.lastError}` : 'No error.', m.relay?.lastError ? `Relay: ${m.relay.lastError}` : null, m.readiness?.state && m.readiness.state !== 'ready' ? `Readiness: ${(m.readiness.checks ?? []).filter((c) => c.ok === false).map((c) => `${c.name ?? c.check ?? ''} ${c.detail ?? c.message ?? ''}`).join('; ')}` : null]
    .filter(Boolean)
    .join('\n');
  return h(
    'a',
    { class: `tile st-${m.state}${m.needsAction ? ' has-error' : ''}`, href: `#/show/${encodeURIComponent(row.partnerId)}/${encodeURIComponent(row.showId)}`, 'aria-describedby': tipId, 'data-target': m.targetId, 'data-state': m.state },
    h('span', { class: 'state' }, `${ICONS[m.state] ?? '?'} ${m.state.replace('_', ' ')}`),
    m.needsAction ? h('span', { class: 'needs' }, ' · needs action') : null,
    h('br'),
    h('span', { class: 'sub' }, `${m.targetName}${m.enabled ? '' : ' (disabled)'} · pins ${m.pins.mirrored}/${m.pins.wanted}${m.since ? ` · for ${ago(m.since)}` : ''}`),
    relay ? h('span', { class: 'sub', style: null }, h('br'), relay) : null,
    readiness ? h('span', { class: 'sub' }, h('br'), readiness) : null,
    m.lastError ? h('span', { class: 'err' }, m.lastError) : null,
    h('span', { class: 'tip', role: 'tooltip', id: tipId }, tip),
  );
}

function matches(row, m) {
  const f = state.filters;
  if (f.partner && row.partnerId !== f.partner) return false;
  if (f.platform && m.platform !== f.platform) return false;
  if (f.state && m.state !== f.state) return false;
  if (f.needs && !m.needsAction) return false;
  return true;
}

function filterBar(partners) {
  const f = state.filters;
  const sel = (id, label, options, value, onchange) =>
    h('div', {}, h('label', { for: id }, label), h('select', { id, onchange }, h('option', { value: '' }, 'All'), options.map(([v, t]) => h('option', { value: v, selected: v === value }, t))));
  return h(
    'form',
    { class: 'filters card', role: 'search', onsubmit: (e) => e.preventDefault() },
    h('div', {}, h('label', { for: 'f-q' }, 'Search show id or title'), h('input', { id: 'f-q', type: 'search', value: f.q, oninput: (e) => ((f.q = e.target.value), renderRows()) })),
    sel('f-partner', 'Partner', partners.map((p) => [p.id, p.name]), f.partner, (e) => ((f.partner = e.target.value), renderRows())),
    sel('f-platform', 'Platform', PLATFORMS.map((p) => [p, p]), f.platform, (e) => ((f.platform = e.target.value), renderRows())),
    sel('f-state', 'Mirror state', MIRROR_STATES.map((s) => [s, s.replace('_', ' ')]), f.state, (e) => ((f.state = e.target.value), renderRows())),
    h('div', { class: 'check' }, h('input', { id: 'f-needs', type: 'checkbox', checked: f.needs, onchange: (e) => ((f.needs = e.target.checked), renderRows()) }), h('label', { for: 'f-needs' }, 'Needs action only')),
  );
}

function renderBoard() {
  const view = $('#view');
  if (!state.board) return view.replaceChildren(h('p', {}, 'Waiting for the board…'));
  const keepFocus = document.activeElement?.id;
  view.replaceChildren(h('h2', {}, "Today's and live shows"), filterBar(state.board.partners), h('div', { id: 'rows' }));
  renderRows();
  if (keepFocus) document.getElementById(keepFocus)?.focus();
}

/**
 * Rows drawn at most. The board holds up to 300 shows per partner (more with live ones), every partner's:
 * with thousands, each board event (a second apart) redrew all of them and the tab stopped answering
 * for seconds at a time. Needs-action rows come first; search and the filters reach the rest.
 */
const MAX_ROWS = 500;

function renderRows() {
  const holder = $('#rows');
  if (!holder || !state.board) return;
  const q = state.filters.q.trim().toLowerCase();
  const rows = state.board.shows
    .filter((r) => !q || r.showId.toLowerCase().includes(q) || r.title.toLowerCase().includes(q))
    .map((r) => ({ ...r, mirrors: r.mirrors.filter((m) => matches(r, m)) }))
    .filter((r) => r.mirrors.length > 0 || (!state.filters.platform && !state.filters.state && !state.filters.needs && (!state.filters.partner || r.partnerId === state.filters.partner)));
  // (A node or nothing: replaceChildren writes a null as the text "null".)
  const leftOff = state.board.leftOff > 0 ? [h('p', { class: 'sub', 'data-role': 'left-off' }, `${state.board.leftOff} more show(s) scheduled within a day of now are not on the board: it holds the 300 nearest to now of each partner, and every live show.`)] : [];
  if (rows.length === 0) return holder.replaceChildren(h('p', { class: 'card' }, state.board.shows.length ? 'No show matches these filters.' : 'No show is scheduled today or live.'), ...leftOff);
  const drawn = rows.slice(0, MAX_ROWS);
  const platforms = PLATFORMS.filter((p) => drawn.some((r) => r.mirrors.some((m) => m.platform === p)));
  holder.replaceChildren(
    ...leftOff,
    h(
      'table',
      { id: 'board' },
      h('caption', { class: 'sub' }, `${rows.length} show(s)${rows.length > drawn.length ? `, the first ${drawn.length} shown: search or filter for the others` : ''}; hover or focus a mirror to read its last error in full`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Show'), platforms.map((p) => h('th', { scope: 'col' }, p)))),
      h(
        'tbody',
        {},
        drawn.map((r) =>
          h(
            'tr',
            { 'data-show': r.showId, 'data-partner': r.partnerId },
            h(
              'th',
              { scope: 'row' },
              h('a', { class: 'show-title', href: `#/show/${encodeURIComponent(r.partnerId)}/${encodeURIComponent(r.showId)}` }, r.title),
              h('div', { class: 'sub' }, `${r.showId} · ${r.partnerName} · show ${r.state} · ${new Date(r.scheduledAt).toLocaleString()}`),
            ),
            platforms.map((p) => h('td', {}, h('div', { class: 'tiles' }, r.mirrors.filter((m) => m.platform === p).map((m) => tile(r, m))))),
          ),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------- show detail

async function refreshDetail() {
  const d = state.detail;
  if (!d) return;
  try {
    const data = await api(`/v1/ops/partners/${seg(d.partnerId)}/shows/${seg(d.showId)}`);
    if (state.detail !== d) return;
    d.data = data;
    renderDetail();
  } catch (err) {
    if (state.detail === d && !d.data) $('#view').replaceChildren(h('p', { class: 'error', role: 'alert' }, `Could not load the show: ${err.message}`));
  }
}

async function act(label, fn) {
  const status = $('#action-status');
  try {
    status.textContent = `${label}…`;
    await fn();
    status.textContent = `${label}: done.`;
    await refreshDetail();
  } catch (err) {
    const s = $('#action-status');
    if (s) s.textContent = `${label} failed: ${err.message}`;
  }
}

function mirrorCard(data, m) {
  const base = `/v1/partners/${seg(data.partner.id)}`;
  const mirrorPath = `${base}/shows/${seg(data.show.id)}/mirrors/${seg(m.targetId)}`;
  const actions = isOperator()
    ? h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', 'data-action': 'resync', onclick: () => act(`${m.state === 'failed' ? 'Retry' : 'Resync'} ${m.targetName}`, () => api(`${mirrorPath}/resync`, { method: 'POST' })) }, m.state === 'failed' ? 'Retry' : 'Resync'),
        h('button', { type: 'button', class: 'secondary', 'data-action': 'link', onclick: () => linkDialog(mirrorPath, m) }, 'Link a hand-made show'),
        h('button', { type: 'button', class: 'secondary', 'data-action': 'credentials', onclick: () => credentialsDialog(`${base}/targets/${seg(m.targetId)}`, m) }, 'Update credentials'),
        m.enabled
          ? h('button', { type: 'button', class: 'danger', 'data-action': 'disable', onclick: () => confirm(`Disable target ${m.targetName} for every show of ${data.partner.name}?`) && act(`Disable ${m.targetName}`, () => api(`${base}/targets/${seg(m.targetId)}`, { method: 'PATCH', json: { enabled: false } })) }, 'Disable target')
          : h('span', { class: 'muted' }, 'target disabled'),
      )
    : null;
  return h(
    'section',
    { class: `card tile-card`, 'aria-label': `${m.targetName} mirror`, 'data-target': m.targetId },
    h('div', { class: `tile st-${m.state}${m.needsAction ? ' has-error' : ''}`, tabindex: '0', 'aria-describedby': `err-${m.targetId}` }, h('span', { class: 'state' }, `${ICONS[m.state] ?? '?'} ${m.state.replace('_', ' ')}`), m.needsAction ? h('span', { class: 'needs' }, ' · needs action') : null),
    h('h3', {}, `${m.targetName} `, h('span', { class: 'sub' }, m.platform)),
    h('div', { class: 'sub' }, `pins ${m.pins.mirrored}/${m.pins.wanted}${m.since ? ` · ${m.state} for ${ago(m.since)}` : ''}`),
    m.externalId ? h('div', { class: 'sub' }, 'platform id ', h('code', {}, m.externalId)) : null,
    m.relay ? h('div', { class: 'sub' }, `relay ${m.relay.state}${typeof m.relay.bitrateKbps === 'number' ? ` · ${m.relay.bitrateKbps} kbps` : ''}${m.relay.lastError ? ` · ${m.relay.lastError}` : ''}`) : null,
    m.readiness ? h('div', { class: 'sub' }, `readiness ${m.readiness.state}`) : null,
    h('p', { class: m.lastError ? 'error' : 'muted', id: `err-${m.targetId}`, 'data-role': 'last-error' }, m.lastError ? `Last error: ${m.lastError}` : 'No error.'),
    actions,
  );
}

function linkDialog(mirrorPath, m) {
  const dlg = h(
    'dialog',
    { 'aria-labelledby': 'link-title' },
    h(
      'form',
      { method: 'dialog' },
      h('h3', { id: 'link-title' }, `Link a show made by hand on ${m.platform}`),
      h('label', { for: 'link-ext' }, 'Platform show id'),
      h('input', { id: 'link-ext', required: true }),
      h('label', { for: 'link-url' }, 'Ingest URL (optional)'),
      h('input', { id: 'link-url', placeholder: 'rtmp://…' }),
      h('label', { for: 'link-key' }, 'Stream key (optional)'),
      h('input', { id: 'link-key', type: 'password', autocomplete: 'off' }),
      h('div', { class: 'actions' }, h('button', { value: 'ok' }, 'Link'), h('button', { value: 'cancel', class: 'secondary', formnovalidate: true }, 'Cancel')),
    ),
  );
  document.body.append(dlg);
  dlg.addEventListener('close', () => {
    const externalId = dlg.querySelector('#link-ext').value.trim();
    const url = dlg.querySelector('#link-url').value.trim();
    const streamKey = dlg.querySelector('#link-key').value.trim();
    const ok = dlg.returnValue === 'ok' && externalId;
    dlg.remove();
    if (ok) void act(`Link ${m.targetName}`, () => api(mirrorPath, { method: 'PUT', json: { externalId, ...(url && streamKey ? { ingest: { url, streamKey } } : {}) } }));
  });
  dlg.showModal();
}

/** The credential fields of each platform (README "Credentials"); required ones first. */
const CREDENTIAL_FIELDS = {
  youtube: { required: ['clientId', 'clientSecret', 'refreshToken'], optional: ['privacyStatus'] },
  tiktok: { required: ['appKey', 'appSecret', 'refreshToken', 'shopCipher'], optional: ['accessToken', 'creatorUsername'] },
  whatnot: { required: ['accessToken'], optional: ['webhookSecret'] },
  bambuser: { required: ['apiKey'], optional: ['region', 'webhookHeaderName', 'webhookHeaderValue', 'showUrlTemplate'] },
  facebook: { required: ['pageId', 'pageAccessToken'], optional: [] },
};

/** New credentials for a target: the platform checks them before they are saved (422 says why not). */
function credentialsDialog(targetPath, m) {
  const fields = CREDENTIAL_FIELDS[m.platform] ?? { required: [], optional: [] };
  const input = (name, required) => [
    h('label', { for: `cred-${name}` }, required ? name : `${name} (optional)`),
    h('input', { id: `cred-${name}`, name, type: /secret|token|key|value/i.test(name) ? 'password' : 'text', autocomplete: 'off', ...(required ? { required: true } : {}) }),
  ];
  const dlg = h(
    'dialog',
    { 'aria-labelledby': 'cred-title' },
    h(
      'form',
      { method: 'dialog' },
      h('h3', { id: 'cred-title' }, `New credentials for ${m.targetName} (${m.platform})`),
      h('p', { class: 'sub' }, 'They replace the current ones as a whole: fill in every field this target uses (an optional field left empty is dropped). The platform checks them before they are saved.'),
      [...fields.required.map((f) => input(f, true)), ...fields.optional.map((f) => input(f, false))].flat(),
      h('label', { class: 'check' }, h('input', { id: 'cred-skip', type: 'checkbox' }), ' Save without checking with the platform (only while it is down)'),
      h('div', { class: 'actions' }, h('button', { value: 'ok' }, 'Save'), h('button', { value: 'cancel', class: 'secondary', formnovalidate: true }, 'Cancel')),
    ),
  );
  document.body.append(dlg);
  dlg.addEventListener('close', () => {
    const credentials = {};
    for (const el of dlg.querySelectorAll('input[name]')) if (el.value.trim()) credentials[el.name] = el.value.trim();
    const skip = dlg.querySelector('#cred-skip').checked;
    const ok = dlg.returnValue === 'ok' && fields.required.every((f) => credentials[f]);
    dlg.remove();
    if (ok) void act(`Update credentials of ${m.targetName}`, () => api(`${targetPath}${skip ? '?verify=false' : ''}`, { method: 'PATCH', json: { credentials } }));
  });
  dlg.showModal();
}

function salesChart(sales) {
  if (!sales.length) return h('p', { class: 'muted' }, 'No attributed sales yet.');
  const byCurrency = new Map();
  for (const s of sales) byCurrency.set(s.currency, [...(byCurrency.get(s.currency) ?? []), s]);
  return [...byCurrency.entries()].map(([currency, rows]) => {
    const max = Math.max(1, ...rows.map((r) => r.grossAmount));
    const barH = 18;
    const height = rows.length * (barH * 2 + 14) + 10;
    const chart = svg(
      'svg',
      { class: 'chart', width: 760, height, viewBox: `0 0 760 ${height}`, role: 'img', 'aria-label': `Sales in ${currency} per target: gross and commission` },
      rows.flatMap((r, i) => {
        const y = 5 + i * (barH * 2 + 14);
        const w = (v) => Math.max(1, Math.round((v / max) * 300));
        return [
          svg('text', { x: 0, y: y + 13 }, `${r.targetName} (${r.platform})`),
          svg('rect', { x: 150, y, width: w(r.grossAmount), height: barH - 2, fill: '#1d4ed8' }),
          svg('text', { x: 155 + w(r.grossAmount), y: y + 13 }, `gross ${money(r.grossAmount, currency, r.minorUnits)} · ${r.orders} order(s)`),
          svg('rect', { x: 150, y: y + barH, width: w(r.commission), height: barH - 2, fill: '#047857' }),
          svg('text', { x: 155 + w(r.commission), y: y + barH + 13 }, `commission ${money(r.commission, currency, r.minorUnits)}`),
        ];
      }),
    );
    const table = h(
      'table',
      {},
      h('caption', { class: 'sub' }, `Sales in ${currency}`),
      h('thead', {}, h('tr', {}, ['Target', 'Platform', 'Orders', 'Gross', 'Refunded', 'Commission'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, h('td', {}, r.targetName), h('td', {}, r.platform), h('td', {}, r.orders), h('td', {}, money(r.grossAmount, currency, r.minorUnits)), h('td', {}, money(r.refundedAmount, currency, r.minorUnits)), h('td', {}, money(r.commission, currency, r.minorUnits))))),
    );
    return h('div', {}, chart, table);
  });
}

function renderDetail() {
  const data = state.detail?.data;
  if (!data) return;
  const focused = document.activeElement;
  const focusKey = focused?.closest('[data-target]')?.getAttribute('data-target');
  const focusAction = focused?.getAttribute('data-action');
  const status = $('#action-status')?.textContent ?? '';
  const targetName = new Map(data.mirrors.map((m) => [m.targetId, m.targetName]));
  $('#view').replaceChildren(
    h('p', {}, h('a', { href: '#/' }, '← Board')),
    h('h2', {}, data.show.title),
    h('p', { class: 'sub' }, `${data.show.id} · ${data.partner.name} · show ${data.show.state} · scheduled ${new Date(data.show.scheduledAt).toLocaleString()} · pinned ${data.show.pinnedProductIds.join(', ') || 'nothing'}`),
    h('p', { id: 'action-status', role: 'status', 'aria-live': 'polite' }, status),
    h('h3', {}, 'Mirrors'),
    h('div', { class: 'mirrors' }, data.mirrors.map((m) => mirrorCard(data, m))),
    h('h3', {}, 'Sales'),
    h('div', { class: 'card' }, salesChart(data.sales)),
    h('h3', {}, 'Timeline'),
    h(
      'ol',
      { class: 'timeline card', reversed: true },
      data.timeline.map((t) =>
        h(
          'li',
          { 'data-kind': t.kind },
          h('span', { class: `kind kind-${t.kind}` }, t.kind),
          h('time', { datetime: t.at }, new Date(t.at).toLocaleTimeString()),
          ' ',
          t.targetId ? h('strong', {}, `${targetName.get(t.targetId) ?? t.targetId}: `) : null,
          t.summary,
          t.detail ? h('div', { class: 'sub' }, t.detail) : null,
        ),
      ),
    ),
  );
  if (focusKey && focusAction) document.querySelector(`section[data-target="${CSS.escape(focusKey)}"] [data-action="${focusAction}"]`)?.focus();
}

// ---------------------------------------------------------------- reconciliations and endpoints

/**
 * Reads what a view shows (null when it could not: the view then says why, and it is read again every
 * few seconds and whenever the live stream delivers the board, so it comes back with storage).
 */
async function loadView(view, title, what, path, list) {
  // A retry keeps the reason on screen until the view loads (no flicker, no alert announced again).
  if (state.failedView !== view) $('#view').replaceChildren(h('h2', {}, title), h('p', {}, 'Loading…'));
  try {
    // The view is paged (limit + cursor): the pages asked for so far ("Show more"), one after another.
    const data = await api(path);
    for (let n = 1; n < (state.pages[view] ?? 1) && data.nextCursor; n++) {
      const next = await api(`${path}?cursor=${encodeURIComponent(data.nextCursor)}`);
      data[list] = data[list].concat(next[list]);
      data.nextCursor = next.nextCursor;
    }
    if (currentView() !== view) return null;
    state.failedView = null;
    return data;
  } catch (err) {
    if (currentView() !== view || !key()) return null;
    state.failedView = view;
    const reason = `Could not load ${what}: ${err.message}. Trying again automatically.`;
    if ($('#view [data-role="load-error"]')?.textContent === reason) return null;
    $('#view').replaceChildren(
      h('h2', {}, title),
      h('p', { class: 'error', role: 'alert', 'data-role': 'load-error' }, reason),
      h('button', { type: 'button', onclick: () => route() }, 'Try again now'),
    );
    return null;
  }
}

/** "Show more" under a paged view while pages follow: the view is read again with one page more. */
function moreButton(view, data) {
  return h('div', {}, data.nextCursor ? h('button', { type: 'button', onclick: () => ((state.pages[view] = (state.pages[view] ?? 1) + 1), route()) }, 'Show more') : null);
}

async function renderReconciliations() {
  const view = $('#view');
  const data = await loadView('reconciliations', 'Reconciliations', 'the reconciliations', '/v1/ops/reconciliations', 'reconciliations');
  if (!data) return;
  view.replaceChildren(
    h('h2', {}, 'Reconciliations'),
    data.reconciliations.length === 0
      ? h('p', { class: 'card' }, 'No reconciliation has run yet.')
      : h(
          'table',
          {},
          h('thead', {}, h('tr', {}, ['Run', 'Partner', 'Period', 'Status', 'Discrepancies'].map((t) => h('th', { scope: 'col' }, t)))),
          h(
            'tbody',
            {},
            data.reconciliations.map((r) =>
              h(
                'tr',
                {},
                h('td', {}, h('code', {}, r.id), h('div', { class: 'sub' }, `${r.trigger}, ${new Date(r.createdAt).toLocaleString()}`)),
                h('td', {}, r.partnerId),
                h('td', {}, `${new Date(r.from).toLocaleString()} – ${new Date(r.to).toLocaleString()}`),
                h('td', {}, r.status, r.error ? h('div', { class: 'error' }, r.error) : null),
                h(
                  'td',
                  {},
                  r.discrepancyCount === 0
                    ? 'none'
                    : h('details', {}, h('summary', {}, `${r.discrepancyCount} (${r.healed} healed)`), h('ul', {}, r.discrepancies.map((d) => h('li', {}, h('strong', {}, d.kind), `${d.reason ? ` (${d.reason})` : ''} ${d.targetId} order ${d.orderId}: ${d.detail}${d.healed ? ' (healed)' : ''}`)))),
                ),
              ),
            ),
          ),
        ),
    moreButton('reconciliations', data),
  );
}

async function renderEndpoints() {
  const view = $('#view');
  const data = await loadView('endpoints', 'Outbound endpoints', 'the outbound endpoints', '/v1/ops/endpoints', 'endpoints');
  if (!data) return;
  const health = (e) => (!e.enabled ? `disabled ${e.disabledAt ? new Date(e.disabledAt).toLocaleString() : ''}${e.disabledReason ? `: ${e.disabledReason}` : ''}` : e.failingSince ? `failing for ${ago(e.failingSince)}` : 'healthy');
  view.replaceChildren(
    h('h2', {}, 'Outbound endpoints'),
    data.endpoints.length === 0
      ? h('p', { class: 'card' }, 'No endpoint is registered.')
      : h(
          'table',
          {},
          h('thead', {}, h('tr', {}, ['Endpoint', 'Partner', 'Health', 'Recent failed deliveries'].map((t) => h('th', { scope: 'col' }, t)))),
          h(
            'tbody',
            {},
            data.endpoints.map((e) =>
              h(
                'tr',
                {},
                h('td', {}, h('code', {}, e.url), h('div', { class: 'sub' }, `${e.id} · ${e.events.join(', ')}`)),
                h('td', {}, e.partnerId),
                h('td', { class: e.enabled && !e.failingSince ? '' : 'error' }, health(e), e.lastSuccessAt ? h('div', { class: 'sub' }, `last success ${new Date(e.lastSuccessAt).toLocaleString()}`) : null),
                h('td', {}, e.recentFailures.length === 0 ? 'none' : h('ul', {}, e.recentFailures.map((f) => h('li', {}, `${new Date(f.at).toLocaleString()} ${f.eventType}: ${f.statusCode ?? ''} ${f.error ?? ''}`)))),
              ),
            ),
          ),
        ),
    moreButton('endpoints', data),
  );
}

// ---------------------------------------------------------------- start

$('#sign-in-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const k = $('#key').value.trim();
  $('#sign-in-error').textContent = '';
  signIn(k).then(started, (err) => ($('#sign-in-error').textContent = err.message));
});
$('#sign-out').addEventListener('click', () => signOut('Signed out.'));

/**
 * /admin/queues reads the session cookie a sign-in sets, which ends after 8 hours and is this browser's
 * last sign-in's (another tab's, with another key, perhaps), while this tab keeps its key as long as
 * it is open: the Queues link answered 401 (or 403) to an admin the console showed signed in. The
 * session is renewed with this tab's key before the dashboard opens, and every hour while an admin is
 * signed in (for a link opened in a new tab). False when the key is refused (the console signs out).
 */
async function renewSession() {
  await signingOut;
  const res = await fetch('/v1/ops/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: key() }) });
  if (res.status === 401) await signOutRefused(res);
  return res.status !== 401;
}
$('#queues-link').addEventListener('click', (e) => {
  if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  // A renewal that failed for another reason (storage down, the network) still opens the dashboard: it says why it cannot be shown.
  void renewSession().then(
    (ok) => ok && location.assign('/admin/queues'),
    () => location.assign('/admin/queues'),
  );
});
setInterval(() => {
  if (key() && state.me?.role === 'admin') void renewSession().catch(() => undefined);
}, 3_600_000);
window.addEventListener('hashchange', route);
// Time in state keeps moving between updates.
setInterval(() => {
  if (currentView() === 'board' && state.board && !document.activeElement?.closest('#rows')) renderRows();
}, 15_000);
// The stream carries the board; a show's sales and timeline also change without a board change.
setInterval(() => {
  if (key() && currentView() === 'show' && !document.querySelector('dialog[open]')) void refreshDetail();
  // A view that could not be read (storage down) is read again until it loads.
  else if (key() && state.failedView && state.failedView === currentView()) route();
}, 5_000);
if (key()) {
  $('#sign-in').hidden = true;
  started();
}
