// Anju operator console: one ES module, no build step, no dependency.
// It speaks only the documented API (/api/v1), keeps the session token in
// sessionStorage, reads the live feed with fetch (EventSource cannot send
// the Authorization header) and loads face images as authorised blobs.
// Test hooks: the data-testid attributes of DESIGN "Contract — console test
// hooks".

const TZ = 'Asia/Shanghai';
const T = {
  zh: { alerts: '告警', notices: '工单', devices: '设备', report: '日报', logout: '退出', user: '用户名',
    password: '密码', login: '登录', unacked: '未处理', estate: '小区', code: '类型', status: '状态',
    since: '起始', all: '全部', time: '时间', place: '地点', subject: '对象', sound: '严重告警提示音',
    snapshot: '抓拍', registered: '登记照片', none: '无', evidence: '证据', history: '处理记录',
    ack: '确认', dispatch: '派单', resolve: '办结', dismiss: '驳回', reason: '原因', confirm: '确定',
    assignee: '网格员', due: '期限', outcome: '结果', confirmed: '属实', false_alarm: '误报',
    no_action: '无需处理', record: '提交结果', text: '走访情况', online: '在线', offline: '离线',
    last_seen: '最近', date: '日期', load: '查询', print: '打印', granted: '通行', denied: '拒绝',
    by_hour: '分时通行', badlogin: '用户名或密码错误', expired: '登录已过期，请重新登录', back: '返回',
    open: '待处理', acknowledged: '已确认', dispatched: '已派单', resolved: '已办结', dismissed: '已驳回',
    no_photo: '无登记照片', no_snapshot: '无抓拍', units: '房屋', unit: '房号', occupants: '登记住户',
    last_activity: '最近活动', days_ago: '天前', never: '无记录', lives_alone: '独居', photos: '走访照片',
    by_entrance: '分出入口通行', people: '人员识别', residents: '住户', visitors: '访客', unknown: '陌生人',
    alerts_day: '当日告警', opened: '新增', closed: '办结/驳回', open_alerts: '在办告警',
    too_many_photos: '每次走访最多 6 张照片', photo_too_big: '照片超过 8 MB',
    watchlist: '重点人员', person: '人员', records: '登记记录', credentials: '凭证', consent: '人脸识别授权',
    consent_yes: '已授权', consent_no: '已撤回', consent_unknown: '未记录', withdraw: '撤回授权', give: '授权',
    lost: '挂失', suspended: '停用', revoked: '注销', active: '有效', report_lost: '挂失', suspend: '停用',
    revoke: '注销', activate: '恢复', move_out: '迁出', lease_end: '迁出日期', expires: '有效期至', add: '添加',
    remove: '移除', name: '姓名', ledger_check: '台账预检', ledger_ok: '台账有效', changes: '变更',
    added: '新增', changed: '修改', moved_out: '迁出', errors: '错误', line: '行', saved: '已保存',
    changed_meanwhile: '记录已被他人修改，已刷新，请重试', users: '用户', role: '角色', estates: '小区', grids: '网格',
    new_password: '新密码', create: '创建', all_estates: '全部小区',
    withdraw_confirm: '撤回授权将删除此人的人脸模板、登记照片和抓拍，确定吗？' },
  en: { alerts: 'Alerts', notices: 'Notices', devices: 'Devices', report: 'Report', logout: 'Log out',
    user: 'User name', password: 'Password', login: 'Log in', unacked: 'unacknowledged', estate: 'Estate',
    code: 'Code', status: 'Status', since: 'Since', all: 'All', time: 'Time', place: 'Place', subject: 'Subject',
    sound: 'Sound on critical', snapshot: 'Snapshot', registered: 'Enrolled photo', none: 'none',
    evidence: 'Evidence', history: 'History', ack: 'Acknowledge', dispatch: 'Dispatch', resolve: 'Resolve',
    dismiss: 'Dismiss', reason: 'Reason', confirm: 'Confirm', assignee: 'Grid manager', due: 'Due',
    outcome: 'Outcome', confirmed: 'Confirmed', false_alarm: 'False alarm', no_action: 'No action',
    record: 'Record result', text: 'Visit notes', online: 'online', offline: 'offline', last_seen: 'Last seen',
    date: 'Date', load: 'Load', print: 'Print', granted: 'granted', denied: 'denied', by_hour: 'Traffic by hour',
    badlogin: 'Wrong user name or password', expired: 'Session expired: please log in again', back: 'Back',
    open: 'open', acknowledged: 'acknowledged', dispatched: 'dispatched', resolved: 'resolved',
    dismissed: 'dismissed', no_photo: 'no enrolled photo', no_snapshot: 'no snapshot', units: 'Units', unit: 'Unit',
    occupants: 'Registered occupants', last_activity: 'Last activity', days_ago: 'days ago', never: 'none on record',
    lives_alone: 'lives alone', photos: 'Visit photos', by_entrance: 'Traffic by entrance', people: 'Faces seen',
    residents: 'residents', visitors: 'visitors', unknown: 'unknown', alerts_day: 'Alerts of the day',
    opened: 'opened', closed: 'closed', open_alerts: 'Active alerts',
    too_many_photos: 'At most 6 photos per visit', photo_too_big: 'photo over 8 MB',
    watchlist: 'Watch list', person: 'Person', records: 'Registrations', credentials: 'Credentials',
    consent: 'Face recognition consent', consent_yes: 'given', consent_no: 'withdrawn', consent_unknown: 'not recorded',
    withdraw: 'Withdraw consent', give: 'Record consent', lost: 'lost', suspended: 'suspended', revoked: 'revoked',
    active: 'active', report_lost: 'Report lost', suspend: 'Suspend', revoke: 'Revoke', activate: 'Re-activate',
    move_out: 'Move out', lease_end: 'Moving-out day', expires: 'Expires', add: 'Add', remove: 'Remove', name: 'Name',
    ledger_check: 'Check a ledger', ledger_ok: 'Ledger valid', changes: 'Changes', added: 'added', changed: 'changed',
    moved_out: 'moved out', errors: 'Errors', line: 'line', saved: 'Saved',
    changed_meanwhile: 'Changed by someone else meanwhile: reloaded, please try again', users: 'Users', role: 'Role',
    estates: 'Estates', grids: 'Grids', new_password: 'New password', create: 'Create', all_estates: 'all estates',
    withdraw_confirm: "Withdrawing deletes this person's face templates, enrolled photo and snapshots. Go ahead?" },
};
let lang = localStorage.getItem('anju.lang') || 'zh';
const t = (k) => (T[lang] && T[lang][k]) || k;
const $ = (sel, root = document) => root.querySelector(sel);

/** An element: h('tag.class', {attrs}, ...children). */
function h(spec, attrs = {}, ...kids) {
  const [tag, ...cls] = spec.split('.');
  const el = document.createElement(tag);
  if (cls.length) el.className = cls.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'testid') el.dataset.testid = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

const fmt = (ts) => ts ? new Intl.DateTimeFormat(lang === 'zh' ? 'zh-CN' : 'en-GB', {
  timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
}).format(new Date(ts)) : '';
const today = () => new Intl.DateTimeFormat('en-CA', { timeZone: TZ }).format(new Date());

// ---------------------------------------------------------------- session
const session = {
  get token() { return sessionStorage.getItem('anju.token'); },
  get user() { return JSON.parse(sessionStorage.getItem('anju.user') || 'null'); },
  set(token, user) { sessionStorage.setItem('anju.token', token); sessionStorage.setItem('anju.user', JSON.stringify(user)); },
  clear() { sessionStorage.removeItem('anju.token'); sessionStorage.removeItem('anju.user'); },
};

class Unauthorized extends Error {}

async function api(path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (opts.json !== undefined) { headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(opts.json); }
  const r = await fetch(path, { ...opts, headers });
  if (r.status === 401) { expire(); throw new Unauthorized(); }
  if (opts.raw) return r;
  const body = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) throw new Error((body && body.error && body.error.message) || r.statusText);
  return body;
}

/** An image the API serves only with the token: fetched, shown as a blob. */
async function authImage(img, url) {
  try {
    const r = await api(url, { raw: true });
    if (!r.ok) { img.alt = t('none'); return; }
    img.src = URL.createObjectURL(await r.blob());
  } catch (e) { if (!(e instanceof Unauthorized)) img.alt = String(e); }
}

function expire(message = t('expired')) {
  stopStream();
  session.clear();
  showLogin(message);
}

// ---------------------------------------------------------------- login
function showLogin(message = '') {
  $('#top').hidden = true;
  $('#view').replaceChildren();
  const f = $('#login');
  f.hidden = false;
  $('#login-error').textContent = message;
  f.querySelector('[data-testid=login-username]').focus();
}

$('#login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const username = f.username.value.trim();
  const r = await fetch('/api/v1/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password: f.password.value }) });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { $('#login-error').textContent = r.status === 401 ? t('badlogin') : (body.error && body.error.message) || r.statusText; return; }
  session.set(body.token, { name: username });
  f.password.value = '';
  f.hidden = true;
  start();
});

// ---------------------------------------------------------------- frame
const VIEWS = ['alerts', 'notices', 'units', 'watchlist', 'devices', 'report', 'users'];
function frame() {
  $('#top').hidden = false;
  $('#who').textContent = session.user ? session.user.name : '';
  const at = (location.hash.slice(2).split('/')[0]) || 'alerts';
  $('#nav').replaceChildren(...VIEWS.map((v) => h('a' + (v === at ? '.on' : ''), { href: `#/${v}` }, t(v))));
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $('#lang').textContent = lang === 'zh' ? 'EN' : '中文';
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
}
$('#lang').addEventListener('click', () => { lang = lang === 'zh' ? 'en' : 'zh'; localStorage.setItem('anju.lang', lang); route(); });
$('#logout').addEventListener('click', async () => { try { await api('/api/v1/auth/logout', { method: 'POST' }); } catch (_) {} expire(''); });
window.addEventListener('hashchange', () => { if (session.token) route(); });

function start() { startStream(); route(); }

// Each navigation numbers itself; a view renders only if no navigation came
// after the one that started it (a slow detail page, still loading when the
// operator went back to the list, must not replace the list).
let navSeq = 0;
function show(seq, ...children) {
  if (seq !== navSeq) return false;
  $('#view').replaceChildren(...children);
  return true;
}
// A view redrawn after an action on it (saved, dismissed, ...), unless the
// operator went elsewhere meanwhile; whether it was.
async function redraw(seq, view) {
  if (seq !== navSeq) return false;
  await view();
  return seq === navSeq;
}
// A status line of the current view, if it is shown.
function say(testid, text) { const m = $(`[data-testid=${testid}]`); if (m) m.textContent = text; }

async function route() {
  const seq = ++navSeq;
  frame();
  const [view, arg] = location.hash.slice(2).split('/');
  try {
    if (view === 'alert' && arg) await alertDetail(arg);
    else if (view === 'notices') await notices();
    else if (view === 'units') await units();
    else if (view === 'person' && arg) await person(decodeURIComponent(arg));
    else if (view === 'watchlist') await watchlist();
    else if (view === 'users') await usersView();
    else if (view === 'devices') await devices();
    else if (view === 'report') await report();
    else await alerts();
  } catch (e) { if (!(e instanceof Unauthorized)) show(seq, h('p.error', {}, String(e.message || e))); }
}

// ---------------------------------------------------------------- live feed
const known = new Map();   // alert id → alert (newest state)
let stream = null;
function stopStream() { if (stream) stream.abort(); stream = null; }
async function startStream() {
  stopStream();
  const ctl = new AbortController();
  stream = ctl;
  let last = null;
  while (!ctl.signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${session.token}` };
      if (last) headers['Last-Event-ID'] = last;
      const r = await fetch('/api/v1/alerts/stream', { headers, signal: ctl.signal });
      if (r.status === 401) { expire(); return; }
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          let data = '', id = null;
          for (const line of block.split('\n')) {
            if (line.startsWith('data:')) data += line.slice(5).trimStart();
            else if (line.startsWith('id:')) id = line.slice(3).trim();
          }
          if (id) last = id;
          if (data) { try { onAlert(JSON.parse(data)); } catch (_) {} }
        }
      }
    } catch (e) { if (ctl.signal.aborted) return; }
    if (!session.token) return;
    // The stream ended (server restart, token check): is the session alive?
    try { await api('/api/v1/estates'); } catch (e) { if (e instanceof Unauthorized) return; }
    await new Promise((res) => setTimeout(res, 2000));
  }
}

function onAlert(a) {
  const fresh = !known.has(a.id);
  known.set(a.id, a);
  if (fresh && a.severity === 'critical' && localStorage.getItem('anju.sound') === '1') beep();
  const list = $('[data-testid=alert-list] tbody');
  if (list) {
    const old = list.querySelector(`[data-alert-id="${a.id}"]`);
    const row = alertRow(a);
    if (!matchesFilters(a)) { if (old) old.remove(); return; }
    if (old) old.replaceWith(row); else { row.classList.add('new'); list.prepend(row); }
    updateCount();
  }
  const open = $('[data-testid=alert-status]');
  if (open && String(open.dataset.alertId) === String(a.id)) {
    open.textContent = t(a.status); open.dataset.status = a.status;
  }
}

function beep() {
  try {
    const ctx = new AudioContext(); const o = ctx.createOscillator(); o.frequency.value = 880;
    o.connect(ctx.destination); o.start(); setTimeout(() => { o.stop(); ctx.close(); }, 300);
  } catch (_) {}
}

// ---------------------------------------------------------------- alerts
const filters = { estate: '', code: '', status: '', since: '' };
function matchesFilters(a) {
  return (!filters.estate || a.estate === filters.estate) && (!filters.code || a.code === filters.code)
    && (!filters.status || a.status === filters.status) && (!filters.since || a.updated_at >= new Date(filters.since).toISOString());
}
const title = (a) => (lang === 'zh' ? a.title_zh : a.title_en);
const place = (a) => [a.estate, a.building, a.unit].filter(Boolean).join('/');
const subject = (s) => Object.entries(s || {}).map(([k, v]) => `${k}: ${v}`).join(' ');
const hasSnapshot = (a) => (a.evidence || []).some((e) => e.snapshot);

function alertRow(a) {
  return h('tr.alert-row', { testid: 'alert-row', 'data-alert-id': a.id, 'data-code': a.code, 'data-status': a.status,
    'data-severity': a.severity, 'data-estate': a.estate, 'data-building': a.building || '',
    'data-subject': Object.entries(a.subject || {}).map(([k, v]) => `${k}:${v}`).join(' '),
    'data-has-snapshot': hasSnapshot(a) ? 'true' : 'false', onclick: () => { location.hash = `#/alert/${a.id}`; } },
  h('td', {}, h(`span.sev.sev-${a.severity}`, { title: a.severity }), title(a)),
  h('td', {}, h('span.status', {}, t(a.status))),
  h('td', {}, place(a)),
  h('td.opt', {}, subject(a.subject)),
  h('td.opt', {}, hasSnapshot(a) ? t('snapshot') : ''),
  h('td', {}, fmt(a.updated_at)));
}

function updateCount() {
  const n = [...known.values()].filter((a) => a.status === 'open' && matchesFilters(a)).length;
  const b = $('#unacked'); if (b) b.textContent = n;
}

async function alerts() {
  const seq = navSeq;
  const q = new URLSearchParams({ limit: '200' });
  for (const [k, v] of Object.entries(filters)) if (v) q.set(k, k === 'since' ? new Date(v).toISOString() : v);
  const [page, estates] = await Promise.all([api(`/api/v1/alerts?${q}`), api('/api/v1/estates')]);
  // What the live feed brought while the page loaded is not lost: the
  // newer state of an alert on the page, and alerts newer than the page.
  const later = (x, y) => Date.parse(x.updated_at) > Date.parse(y.updated_at);
  const shown = page.alerts.map((a) => { const k = known.get(a.id); return k && later(k, a) ? k : a; });
  const top = page.alerts.length ? page.alerts[0].id : 0;
  const arrived = [...known.values()].filter((a) => a.id > top && matchesFilters(a)).sort((x, y) => y.id - x.id);
  for (const a of shown) known.set(a.id, a);
  const sel = (name, options) => h('select', { name, onchange: (e) => { filters[name] = e.target.value; navSeq++; alerts(); } },
    h('option', { value: '' }, `${t(name)}: ${t('all')}`),
    ...options.map(([v, label]) => h('option', { value: v, selected: filters[name] === v }, label)));
  const codes = [...new Set(page.alerts.map((a) => a.code))].sort();
  const sound = h('input', { type: 'checkbox', checked: localStorage.getItem('anju.sound') === '1',
    onchange: (e) => localStorage.setItem('anju.sound', e.target.checked ? '1' : '0') });
  show(seq,
    h('div.filters', {},
      h('span', {}, h('span.badge', { id: 'unacked' }, '0'), ' ', t('unacked')),
      sel('estate', estates.estates.map((e) => [e.code, `${e.code} ${e.name}`])),
      sel('code', codes.map((c) => [c, c])),
      sel('status', ['open', 'acknowledged', 'dispatched', 'resolved', 'dismissed'].map((s) => [s, t(s)])),
      h('label', {}, `${t('since')} `, h('input', { type: 'date', value: filters.since, onchange: (e) => { filters.since = e.target.value; navSeq++; alerts(); } })),
      h('label', {}, sound, ' ', t('sound'))),
    h('table', { testid: 'alert-list' },
      h('thead', {}, h('tr', {}, h('th', {}, t('alerts')), h('th', {}, t('status')), h('th', {}, t('place')),
        h('th.opt', {}, t('subject')), h('th.opt', {}, t('snapshot')), h('th', {}, t('time')))),
      h('tbody', {}, ...arrived.concat(shown.filter(matchesFilters)).map(alertRow))));
  updateCount();
}

async function alertDetail(id) {
  const seq = navSeq;
  const a = await api(`/api/v1/alerts/${encodeURIComponent(id)}`);
  const snapImg = h('img', { testid: 'alert-snapshot', alt: t('snapshot') });
  const snap = (a.evidence || []).find((e) => e.snapshot);
  const photoUrl = a.registered && a.registered.photo;
  const photoImg = h('img', { testid: 'person-photo', alt: t('registered') });
  if (snap) authImage(snapImg, snap.snapshot);
  if (photoUrl) authImage(photoImg, photoUrl);
  const score = snap && snap.note ? snap.note : '';
  const status = h('span.status', { testid: 'alert-status', 'data-status': a.status, 'data-alert-id': a.id }, t(a.status));
  const panel = h('div.actions');
  const act = async (action, body) => {
    try { const r = await api(`/api/v1/alerts/${a.id}/${action}`, { method: 'POST', json: body }); onAlert(r); await redraw(seq, () => alertDetail(id)); }
    catch (e) { if (!(e instanceof Unauthorized)) panel.append(h('span.error', {}, String(e.message))); }
  };
  const reason = h('input', { testid: 'dismiss-reason', placeholder: t('reason'), hidden: true });
  const confirm = h('button.primary', { testid: 'dismiss-confirm', type: 'button', hidden: true,
    onclick: () => reason.value.trim() && act('dismiss', { reason: reason.value.trim() }) }, t('confirm'));
  const assignee = h('input', { placeholder: t('assignee'), name: 'assignee' });
  const due = h('input', { type: 'datetime-local', name: 'due' });
  const outcome = h('select', { name: 'outcome' }, ...['confirmed', 'false_alarm', 'no_action'].map((o) => h('option', { value: o }, t(o))));
  panel.append(
    h('button.action', { testid: 'action-ack', type: 'button', onclick: () => act('ack', {}) }, t('ack')),
    assignee, due,
    h('button.action', { testid: 'action-dispatch', type: 'button', onclick: () => act('dispatch', {
      assignee: assignee.value.trim() || undefined, due: due.value ? new Date(due.value).toISOString() : undefined }) }, t('dispatch')),
    outcome,
    h('button.action', { testid: 'action-resolve', type: 'button', onclick: () => act('resolve', { outcome: outcome.value }) }, t('resolve')),
    h('button.action', { testid: 'action-dismiss', type: 'button', onclick: () => { reason.hidden = false; confirm.hidden = false; reason.focus(); } }, t('dismiss')),
    reason, confirm);
  show(seq,
    h('p', {}, h('a', { href: '#/alerts' }, '← ', t('back'))),
    h('div.card', {},
      h('h2', {}, h(`span.sev.sev-${a.severity}`), title(a), ' ', status),
      h('p.mute', {}, `#${a.id} · ${a.code} · ${place(a)} · ${subject(a.subject)} · ${fmt(a.opened_at)} → ${fmt(a.updated_at)}`),
      h('div.faces', {},
        h('figure', {}, snap ? snapImg : h('div.mute', {}, t('no_snapshot')), h('figcaption', {}, `${t('snapshot')} ${score}`)),
        h('figure', {}, photoUrl ? photoImg : h('div.mute', {}, t('no_photo')),
          h('figcaption', {}, `${t('registered')} ${a.registered ? a.registered.person : ''}`))),
      panel),
    h('div.grid2', {},
      h('div.card', {}, h('h3', {}, t('evidence')), h('ul.timeline', {}, ...(a.evidence || []).map((e) => h('li', {},
        `${fmt(e.ts)} · ${e.kind}`, e.device ? ` · ${e.device}` : '', e.credential ? ` · ${e.credential}` : '',
        e.person ? ` · ${e.person}` : '', e.stranger ? ` · ${e.stranger}` : '', e.note ? ` · ${e.note}` : '')))),
      h('div.card', {}, h('h3', {}, t('history')), h('ul.timeline', {}, ...(a.transitions || []).map((tr) => h('li', {},
        `${fmt(tr.at)} · ${tr.by} · ${t(tr.from)} → ${t(tr.to)}`, tr.reason ? ` · ${tr.reason}` : '')),
        ...(a.notices || []).map((n) => h('li', {}, `${t('dispatch')} #${n.id} → ${n.assignee || n.grid || ''} · ${t('due')} ${fmt(n.due_at)} · ${n.status}`,
          n.result ? ` · ${t(n.result)}` : '', n.result_text ? ` · ${n.result_text}` : '',
          (n.photos || []).length ? h('div.visit', {}, ...n.photos.map((u) => { const img = h('img', { testid: 'visit-photo', alt: t('photos') }); authImage(img, u); return img; })) : null))))));
}

// ---------------------------------------------------------------- notices
async function notices() {
  const seq = navSeq;
  const r = await api('/api/v1/notices?status=open');
  const rows = await Promise.all(r.notices.map(async (n) => {
    let a = null; try { a = await api(`/api/v1/alerts/${n.alert_id}`); } catch (_) {}
    const outcome = h('select', {}, ...['confirmed', 'false_alarm', 'no_action'].map((o) => h('option', { value: o }, t(o))));
    const text = h('input', { placeholder: t('text'), testid: 'notice-text' });
    const photos = h('input', { type: 'file', accept: 'image/jpeg,image/png', multiple: true, capture: 'environment',
      testid: 'notice-photos', title: t('photos') });
    const msg = h('span');
    const sent = new Set();
    return h('div.card', { testid: 'notice-row', 'data-notice-id': n.id, 'data-alert-id': n.alert_id },
      h('h3', {}, a ? title(a) : `#${n.alert_id}`),
      h('p.mute', {}, `${[n.estate, n.building].filter(Boolean).join('/')} ${a && a.unit ? a.unit : ''} · ${t('due')} ${fmt(n.due_at)}`),
      a ? h('p', {}, h('a', { href: `#/alert/${n.alert_id}` }, t('evidence'))) : null,
      h('div.actions', {}, outcome, text, h('label.file', {}, `${t('photos')} `, photos), h('button.primary', { type: 'button', testid: 'notice-submit', onclick: async () => {
        try {
          // The photos first (only an open notice takes them), then the result. Checked here
          // (6 at most, 8 MiB each); a photo already stored is not sent again on a retry.
          const files = [...photos.files];
          if (files.length > 6) throw new Error(t('too_many_photos'));
          const big = files.find((f) => f.size > 8 * 1024 * 1024);
          if (big) throw new Error(`${big.name}: ${t('photo_too_big')}`);
          for (const f of files) {
            const key = `${f.name}:${f.size}:${f.lastModified}`;
            if (sent.has(key)) continue;
            await api(`/api/v1/notices/${n.id}/photos`, { method: 'POST', headers: { 'Content-Type': f.type || 'image/jpeg' }, body: f });
            sent.add(key);
          }
          await api(`/api/v1/notices/${n.id}/result`, { method: 'POST', json: { outcome: outcome.value, text: text.value.trim() || undefined } });
          await redraw(seq, notices);
        }
        catch (e) { if (!(e instanceof Unauthorized)) msg.textContent = e.message; }
      } }, t('record')), msg));
  }));
  show(seq, h('section', { testid: 'notice-list' }, ...rows));
}

// ---------------------------------------------------------------- units
const DAY = 86400e3;
const ACTIVE = ['open', 'acknowledged', 'dispatched'];
async function units() {
  const seq = navSeq;
  const estates = (await api('/api/v1/estates')).estates;
  const est = h('select', { onchange: () => load() }, ...estates.map((e) => h('option', { value: e.code }, `${e.code} ${e.name}`)));
  const out = h('div');
  const load = async () => {
    const [r, al] = await Promise.all([
      api(`/api/v1/units/activity?estate=${encodeURIComponent(est.value)}&limit=1000`),
      api(`/api/v1/alerts?estate=${encodeURIComponent(est.value)}&limit=500`)]);
    const active = al.alerts.filter((a) => ACTIVE.includes(a.status) && a.unit);
    const now = Date.now();
    out.replaceChildren(h('table', { testid: 'unit-list' },
      h('thead', {}, h('tr', {}, h('th', {}, t('unit')), h('th', {}, t('occupants')), h('th', {}, t('last_activity')), h('th', {}, t('open_alerts')))),
      h('tbody', {}, ...r.units.map((u) => {
        const idle = u.last_activity ? Math.floor((now - new Date(u.last_activity)) / DAY) : null;
        const cls = u.occupants.length === 0 ? 'mute' : idle === null || idle >= 30 ? 'bad' : idle >= 2 ? 'warn' : '';
        const mine = active.filter((a) => a.building === u.building && a.unit === u.unit);
        return h('tr', { testid: 'unit-row', 'data-unit': `${u.estate}/${u.building}/${u.unit}`, 'data-idle-days': idle === null ? '' : idle, class: cls },
          h('td', {}, `${u.building}-${u.unit}`, u.area_m2 ? h('span.mute', {}, ` ${u.area_m2} m²`) : null),
          h('td', {}, ...u.occupants.map((o) => {
            const last = [o.last_access, o.last_sighting].filter(Boolean).sort().pop();
            return h('div', {}, h('a', { href: `#/person/${encodeURIComponent(o.person)}`, testid: 'occupant-link' }, o.name),
              ` (${o.role}${o.lives_alone ? ', ' + t('lives_alone') : ''}) `,
              h('span.mute', {}, last ? fmt(last) : t('never')));
          })),
          h('td', {}, u.last_activity ? `${fmt(u.last_activity)} · ${idle} ${t('days_ago')}` : t('never')),
          h('td', {}, ...mine.map((a) => h('a.tag', { href: `#/alert/${a.id}`, 'data-code': a.code }, title(a)))));
      }))));
  };
  show(seq, h('div.filters', {}, est, ledgerCheck()), out);
  if (estates.length) await load();
}

/** Administrators: what an updated ledger (CSV or XLSX) would change, before importing it. */
function ledgerCheck() {
  const out = h('div', { testid: 'ledger-result' });
  const file = h('input', { type: 'file', accept: '.csv,.xlsx,text/csv', testid: 'ledger-file', onchange: async () => {
    const f = file.files[0]; if (!f) return;
    try {
      const r = await api('/api/v1/ledger/dry-run', { method: 'POST', headers: { 'Content-Type': f.type || 'text/csv' }, body: f });
      if (!r.valid) {
        out.replaceChildren(h('h3.error', {}, `${t('errors')} (${r.errors.length})`), h('ul', {}, ...r.errors.map((e) =>
          h('li', { testid: 'ledger-error', 'data-line': e.line || '', 'data-field': e.field || '' },
            `${t('line')} ${e.line || '-'} · ${e.field || ''} · ${e.message}`))));
      } else {
        const n = (c) => (c ? c.length : 0);
        out.replaceChildren(h('p', { testid: 'ledger-summary', 'data-would-change': String(r.would_change) },
          `${t('ledger_ok')} · ${t('added')} ${n(r.persons.added)} · ${t('changed')} ${n(r.persons.changed)} · ${t('moved_out')} ${n(r.moved_out)}`),
        h('ul', {}, ...r.persons.added.map((p) => h('li', {}, `+ ${p.id} ${p.name} → ${p.unit.estate}/${p.unit.building}/${p.unit.unit}`)),
          ...r.persons.changed.map((c) => h('li', {}, `~ ${c.key}`))));
      }
    } catch (e) { if (!(e instanceof Unauthorized)) out.replaceChildren(h('p.error', {}, e.message)); }
  } });
  return h('span.ledger', {}, h('label.file', {}, `${t('ledger_check')} `, file), out);
}

/** A GET answering JSON and its ETag. */
async function tagged(url) {
  const r = await api(url, { raw: true });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error((body && body.error && body.error.message) || r.statusText);
  return [body, r.headers.get('ETag')];
}

// ---------------------------------------------------------------- person
let personRender = 0;
async function person(id) {
  const seq = navSeq;
  // Only the latest of overlapping renders draws (a slow one must not put
  // back an older state, or older ETags).
  const gen = ++personRender;
  const enc = encodeURIComponent(id);
  const [p, etag] = await tagged(`/api/v1/persons/${enc}`);
  const msg = h('p', { testid: 'person-message', role: 'status' });
  const write = async (url, method, json, ifMatch) => {
    try {
      const r = await api(url, { raw: true, method, headers: { 'Content-Type': 'application/json', ...(ifMatch ? { 'If-Match': ifMatch } : {}) }, body: JSON.stringify(json) });
      if (r.status === 412) { if (await redraw(seq, () => person(id))) say('person-message', t('changed_meanwhile')); return; }
      const body = await r.json().catch(() => null);
      if (!r.ok) throw new Error((body && body.error && body.error.message) || r.statusText);
      if (await redraw(seq, () => person(id))) say('person-message', t('saved'));
    } catch (e) {
      if (e instanceof Unauthorized) return;
      // Redrawn from the server, so that no control shows a value that was not saved.
      try { if (!(await redraw(seq, () => person(id)))) return; } catch (_) {}
      say('person-message', e.message);
    }
  };
  const cur = p.records[p.records.length - 1];
  const photo = h('img', { testid: 'person-photo', alt: t('registered') });
  authImage(photo, `/api/v1/persons/${enc}/photo`);
  // Each credential's ETag as the page shows it: a change made by someone
  // else since is a 412, reported, and the page redrawn.
  const tags = new Map(await Promise.all(p.credentials.map(async (c) => {
    try { return [c.id, (await tagged(`/api/v1/credentials/${c.kind}/${encodeURIComponent(c.id)}`))[1]]; }
    catch (e) { if (e instanceof Unauthorized) throw e; return [c.id, null]; }
  })));
  const status = (c, to) => write(`/api/v1/credentials/${c.kind}/${encodeURIComponent(c.id)}/status`, 'POST', { status: to }, tags.get(c.id));
  const consent = p.face_consent ? (p.face_consent.consent ? 'consent_yes' : 'consent_no') : 'consent_unknown';
  const end = h('input', { type: 'date', value: today(), testid: 'lease-end' });
  let history = h('p.mute', {}, '');
  try {
    const hist = await api(`/api/v1/persons/${enc}/history`);
    history = h('ul.timeline', { testid: 'person-history' }, ...hist.history.map((e) =>
      h('li', { testid: 'history-row', 'data-action': e.action }, `${fmt(e.at)} · ${e.by} · ${e.action}`,
        e.detail && e.detail.note ? ` · ${e.detail.note}` : '')));
  } catch (e) { if (e instanceof Unauthorized) return; history = h('p.mute', { testid: 'person-history-unavailable' }, e.message); }
  if (gen !== personRender) return;
  show(seq,
    h('p', {}, h('a', { href: '#/units' }, '← ', t('back'))),
    h('div.card', { testid: 'person-page', 'data-person': id },
      h('h2', {}, `${cur ? cur.name : id} `, h('span.mute', {}, id)),
      h('div.faces', {}, h('figure', {}, photo, h('figcaption', {}, t('registered')))),
      h('h3', {}, t('records')),
      h('table', {}, h('tbody', {}, ...p.records.map((r) => h('tr', {},
        h('td', {}, `${r.unit.estate}/${r.unit.building}/${r.unit.unit}`), h('td', {}, `${r.household} · ${r.role}`),
        h('td', {}, `${r.lease_start} → ${r.lease_end || ''}`), h('td', {}, r.lives_alone ? t('lives_alone') : ''))))),
      cur && !cur.lease_end ? h('div.actions', {},
        h('label', {}, h('input', { type: 'checkbox', checked: cur.lives_alone, testid: 'lives-alone',
          onchange: (e) => write(`/api/v1/persons/${enc}`, 'PATCH', { lives_alone: e.target.checked }, etag) }), ' ', t('lives_alone')),
        end, h('button.action', { type: 'button', testid: 'move-out', onclick: () => write(`/api/v1/persons/${enc}/move-out`, 'POST', { lease_end: end.value }, etag) }, t('move_out'))) : null,
      h('h3', {}, t('credentials')),
      h('table', {}, h('tbody', {}, ...p.credentials.map((c) => h('tr', { testid: 'credential-row', 'data-credential': c.id, 'data-status': c.status || 'active', 'data-etag': tags.get(c.id) || '' },
        h('td', {}, `${c.kind} ${c.id}`), h('td', {}, t(c.status || 'active')),
        h('td', {}, ...[['lost', 'report_lost'], ['suspended', 'suspend'], ['revoked', 'revoke'], ['active', 'activate']]
          .filter(([to]) => to !== (c.status || 'active'))
          .map(([to, label]) => h('button.action', { type: 'button', testid: `credential-${to}`, onclick: () => status(c, to) }, t(label)))))))),
      h('h3', {}, t('consent')),
      h('p', {}, h('span', { testid: 'consent-state', 'data-consent': consent }, t(consent)), ' ',
        h('button.action', { type: 'button', testid: 'consent-toggle', onclick: () => (consent === 'consent_no' || confirm(t('withdraw_confirm'))) && write(`/api/v1/persons/${enc}/consent`, 'POST', { face: consent === 'consent_no' }) },
          consent === 'consent_no' ? t('give') : t('withdraw'))),
      msg,
      h('h3', {}, t('history')), history));
}

// ---------------------------------------------------------------- watch list
async function watchlist() {
  const seq = navSeq;
  const r = await api('/api/v1/watchlist');
  const msg = h('p', { role: 'status', testid: 'watch-message' });
  const f = { person: h('input', { placeholder: 'person_id', testid: 'watch-person' }), name: h('input', { placeholder: t('name'), testid: 'watch-name' }),
    reason: h('input', { placeholder: t('reason'), testid: 'watch-reason' }), expires: h('input', { type: 'date', testid: 'watch-expires' }) };
  const add = async () => {
    try {
      await api('/api/v1/watchlist', { method: 'POST', json: { person: f.person.value.trim(), name: f.name.value.trim(), reason: f.reason.value.trim(), expires: f.expires.value || undefined } });
      await redraw(seq, watchlist);
    } catch (e) { if (!(e instanceof Unauthorized)) msg.textContent = e.message; }
  };
  const remove = async (w) => {
    const why = prompt(t('reason')); if (!why) return;
    try {
      const r = await api(`/api/v1/watchlist/${encodeURIComponent(w.person)}?reason=${encodeURIComponent(why)}`,
        { raw: true, method: 'DELETE', headers: { 'If-Match': `"${w.version}"` } });
      if (r.status === 412) { if (await redraw(seq, watchlist)) say('watch-message', t('changed_meanwhile')); return; }
      if (!r.ok) { const b = await r.json().catch(() => null); throw new Error((b && b.error && b.error.message) || r.statusText); }
      await redraw(seq, watchlist);
    } catch (e) { if (!(e instanceof Unauthorized)) msg.textContent = e.message; }
  };
  show(seq,
    h('table', { testid: 'watch-list' },
      h('thead', {}, h('tr', {}, h('th', {}, t('person')), h('th', {}, t('name')), h('th', {}, t('reason')), h('th', {}, t('expires')), h('th', {}, ''))),
      h('tbody', {}, ...r.watchlist.map((w) => h('tr', { testid: 'watch-row', 'data-person': w.person },
        h('td', {}, w.person), h('td', {}, w.name), h('td', {}, w.reason), h('td', {}, w.expires || ''),
        h('td', {}, h('button.action', { type: 'button', onclick: () => remove(w) }, t('remove'))))))),
    h('div.actions', {}, f.person, f.name, f.reason, f.expires, h('button.primary', { type: 'button', testid: 'watch-add', onclick: add }, t('add'))),
    msg);
}

// ---------------------------------------------------------------- users
const ROLES = ['admin', 'supervisor', 'operator', 'field_staff'];
async function usersView() {
  const seq = navSeq;
  const r = await api('/api/v1/users');
  const msg = h('p', { role: 'status', testid: 'users-message' });
  const save = async (u, body) => {
    try {
      const r = await api(`/api/v1/users/${encodeURIComponent(u.name)}`,
        { raw: true, method: 'PATCH', headers: { 'If-Match': `"${u.version}"`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      if (r.status === 412) { if (await redraw(seq, usersView)) say('users-message', t('changed_meanwhile')); return; }
      if (!r.ok) { const b = await r.json().catch(() => null); throw new Error((b && b.error && b.error.message) || r.statusText); }
      if (await redraw(seq, usersView)) say('users-message', t('saved'));
    } catch (e) {
      if (e instanceof Unauthorized) return;
      if (await redraw(seq, usersView)) say('users-message', e.message);
    }
  };
  const f = { name: h('input', { placeholder: t('user'), testid: 'user-name' }),
    role: h('select', { testid: 'user-role' }, ...ROLES.map((x) => h('option', { value: x }, x))),
    estates: h('input', { placeholder: `${t('estates')} (FCY,XYZ)`, testid: 'user-estates' }),
    grids: h('input', { placeholder: `${t('grids')} (FCY:G1)`, testid: 'user-grids' }),
    password: h('input', { type: 'password', placeholder: t('password'), testid: 'user-password', autocomplete: 'new-password' }) };
  const list = (v) => v.split(',').map((x) => x.trim()).filter(Boolean);
  const create = async () => {
    try {
      await api('/api/v1/users', { method: 'POST', json: { name: f.name.value.trim(), role: f.role.value,
        estates: list(f.estates.value), grids: list(f.grids.value), password: f.password.value } });
      await redraw(seq, usersView);
    } catch (e) { if (!(e instanceof Unauthorized)) msg.textContent = e.message; }
  };
  show(seq,
    h('table', { testid: 'user-list' },
      h('thead', {}, h('tr', {}, h('th', {}, t('user')), h('th', {}, t('role')), h('th', {}, t('estates')), h('th', {}, t('grids')), h('th', {}, ''))),
      h('tbody', {}, ...r.users.map((u) => {
        const role = h('select', { testid: 'user-role-edit', onchange: (e) => save(u, { role: e.target.value }) },
          ...ROLES.map((x) => h('option', { value: x, selected: x === u.role }, x)));
        const pw = h('input', { type: 'password', placeholder: t('new_password'), autocomplete: 'new-password' });
        return h('tr', { testid: 'user-row', 'data-user': u.name, 'data-role': u.role },
          h('td', {}, u.name), h('td', {}, role), h('td', {}, u.all_estates ? t('all_estates') : u.estates.join(', ')),
          h('td', {}, u.grids.map((g) => g.join(':')).join(', ')),
          h('td', {}, pw, h('button.action', { type: 'button', onclick: () => pw.value && save(u, { password: pw.value }) }, t('new_password'))));
      }))),
    h('div.actions', {}, f.name, f.role, f.estates, f.grids, f.password, h('button.primary', { type: 'button', testid: 'user-create', onclick: create }, t('create'))),
    msg);
}

// ---------------------------------------------------------------- devices
async function devices() {
  const seq = navSeq;
  const r = await api('/api/v1/devices?limit=1000');
  show(seq, h('table', { testid: 'device-list' },
    h('thead', {}, h('tr', {}, h('th', {}, t('devices')), h('th', {}, t('status')), h('th.opt', {}, t('place')), h('th', {}, t('last_seen')))),
    h('tbody', {}, ...r.devices.map((d) => h('tr', { testid: 'device-row', 'data-device': d.id, 'data-online': String(d.online !== false && d.last_seen !== null) },
      h('td', {}, `${d.id} (${d.kind})`),
      h('td', { class: `online-${d.online !== false && d.last_seen !== null}` }, d.online !== false && d.last_seen !== null ? t('online') : t('offline')),
      h('td.opt', {}, `${d.estate}/${d.entrance}`),
      h('td', {}, fmt(d.last_seen)))))));
}

// ---------------------------------------------------------------- report
async function report() {
  const seq = navSeq;
  const estates = (await api('/api/v1/estates')).estates;
  const est = h('select', {}, ...estates.map((e) => h('option', { value: e.code }, `${e.code} ${e.name}`)));
  const date = h('input', { type: 'date', value: today() });
  const out = h('div');
  const load = async () => {
    const r = await api(`/api/v1/reports/access?estate=${encodeURIComponent(est.value)}&date=${date.value}`);
    out.replaceChildren(
      h('div.card', {}, h('h3', {}, `${t('by_hour')} · ${r.estate} · ${r.date}`), chart(r.by_hour || []),
        h('p.mute', {}, `${t('granted')} ${r.totals.granted} · ${t('denied')} ${r.totals.denied}`)),
      h('div.grid2', {},
        h('div.card', {}, h('h3', {}, t('by_entrance')), hbars('report-entrances', (r.by_entrance || []).map((e) => [e.entrance, [['granted', e.granted], ['denied', e.denied]]]))),
        h('div.card', {}, h('h3', {}, t('people')), hbars('report-people', [
          [t('residents'), [['granted', r.sightings.residents]]], [t('visitors'), [['visitor', r.sightings.visitors]]],
          [t('unknown'), [['denied', r.sightings.unknown]]]])),
        h('div.card', {}, h('h3', {}, `${t('alerts_day')} (${t('opened')} / ${t('closed')})`), hbars('report-alerts', (r.alerts || []).map((a) =>
          [a.code, [['opened', a.opened], ['closed', a.resolved + a.dismissed]]]))),
        h('div.card', {}, h('h3', {}, t('devices')), h('ul.timeline', {}, ...(r.devices || []).map((d) => h('li', {}, `${d.device} · ${d.uptime === null ? '-' : Math.round(d.uptime * 100) + '%'}`))))));
  };
  show(seq, h('div.filters', {}, est, date, h('button.primary', { type: 'button', onclick: load }, t('load')),
    h('button.action', { type: 'button', onclick: () => print() }, t('print'))), out);
  if (estates.length) await load();
}

/** Horizontal bars, one row per label, each value a bar of its class, as SVG. */
function hbars(testid, rows) {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 360, row = 22, lw = 120, H = Math.max(1, rows.length) * row + 4;
  const max = Math.max(1, ...rows.flatMap(([, vs]) => vs.map(([, v]) => v || 0)));
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`); svg.setAttribute('class', 'chart hbars'); svg.dataset.testid = testid;
  svg.setAttribute('width', '100%');
  rows.forEach(([label, vs], i) => {
    const y = i * row + 2, bh = (row - 6) / Math.max(1, vs.length);
    const tx = document.createElementNS(NS, 'text'); tx.setAttribute('x', 0); tx.setAttribute('y', y + row / 2 + 2);
    tx.textContent = label; svg.append(tx);
    vs.forEach(([cls, v], k) => {
      const r = document.createElementNS(NS, 'rect');
      r.setAttribute('x', lw); r.setAttribute('y', y + k * bh); r.setAttribute('height', bh - 1);
      r.setAttribute('width', Math.max(0.5, ((v || 0) / max) * (W - lw - 40))); r.setAttribute('class', cls); svg.append(r);
      const n = document.createElementNS(NS, 'text'); n.setAttribute('x', lw + Math.max(0.5, ((v || 0) / max) * (W - lw - 40)) + 3);
      n.setAttribute('y', y + k * bh + bh - 2); n.textContent = String(v || 0); svg.append(n);
    });
  });
  return svg;
}

/** Bars of granted and denied passages per hour, as SVG. */
function chart(byHour) {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 720, H = 180, pad = 20, bw = (W - pad * 2) / 24;
  const max = Math.max(1, ...byHour.map((b) => (b.granted || 0) + (b.denied || 0)));
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`); svg.setAttribute('class', 'chart'); svg.dataset.testid = 'report-chart';
  svg.setAttribute('width', '100%');
  for (let hr = 0; hr < 24; hr++) {
    const b = byHour.find((x) => x.hour === hr) || { granted: 0, denied: 0 };
    const g = ((b.granted || 0) / max) * (H - pad * 2), d = ((b.denied || 0) / max) * (H - pad * 2);
    const x = pad + hr * bw;
    for (const [cls, y, hgt] of [['granted', H - pad - g, g], ['denied', H - pad - g - d, d]]) {
      const r = document.createElementNS(NS, 'rect');
      r.setAttribute('x', x + 1); r.setAttribute('y', y); r.setAttribute('width', bw - 2); r.setAttribute('height', Math.max(hgt, 0.5));
      r.setAttribute('class', cls); svg.append(r);
    }
    if (hr % 3 === 0) { const tx = document.createElementNS(NS, 'text'); tx.setAttribute('x', x); tx.setAttribute('y', H - 4); tx.textContent = `${hr}`; svg.append(tx); }
  }
  return svg;
}

// ---------------------------------------------------------------- boot
if (session.token) start(); else showLogin();
