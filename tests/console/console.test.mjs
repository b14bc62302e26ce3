// Browser tests of the operator console (issue 13) on the real path:
// `anju demo` (its own MQTT broker, GStreamer camera with real photos, the
// edge and the centre in one process) and headless Debian chromium driven
// by playwright-core. Run by scripts/test.sh after the Rust tests, with the
// binary they built (ANJU_BIN, default target/debug/anju).
//
// Screenshots of each screen go to $ANJU_SHOTS (default target/console-shots).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.ANJU_BIN || path.join(ROOT, 'target/debug/anju');
const SHOTS = process.env.ANJU_SHOTS || path.join(ROOT, 'target/console-shots');
mkdirSync(SHOTS, { recursive: true });

const freePort = () => new Promise((res) => {
  const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let demo, base, browser, dataDir;
const demoLog = [];

before(async () => {
  const [port, mqtt] = [await freePort(), await freePort()];
  dataDir = mkdtempSync(path.join(tmpdir(), 'anju-console-'));
  base = `http://127.0.0.1:${port}`;
  demo = spawn(BIN, ['demo', '--listen', `127.0.0.1:${port}`, '--mqtt-port', String(mqtt), '--data-dir', dataDir, '--rate', '2'],
    { cwd: ROOT, env: { ...process.env, ANJU_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  demo.stdout.on('data', (d) => demoLog.push(String(d)));
  demo.stderr.on('data', (d) => demoLog.push(String(d)));
  // Up once it says so: its users, camera and edge exist by then (the
  // HTTP server answers /healthz a little earlier).
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/healthz`)).ok && demoLog.join('').includes('Anju demo is running.')) break; } catch (_) {}
    assert.ok(i < 1200, `anju demo did not start:\n${demoLog.join('')}`);
    await sleep(100);
  }
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking'] });
});

after(async () => {
  if (browser) await browser.close();
  if (demo) { demo.kill('SIGINT'); await new Promise((r) => { const t = setTimeout(() => { demo.kill('SIGKILL'); r(); }, 15000); demo.on('exit', () => { clearTimeout(t); r(); }); }); }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function login(page, user) {
  await page.goto(base + '/');
  await page.getByTestId('login-username').fill(user);
  await page.getByTestId('login-password').fill(`${user}-demo`);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('alert-list').waitFor();
}

const naturalWidth = (loc) => loc.evaluate((img) => (img.complete ? img.naturalWidth : 0));

import { existsSync } from 'node:fs';
const PHOTOS = ['biden.jpg', 'obama2.jpg'].every((f) => existsSync(path.join(ROOT, '.cache/test-photos', f)));

test('operator: live alert with faces, dismissal, dispatch, devices, report, expiry', { timeout: 300_000 }, async (t) => {
  if (!PHOTOS) {
    // Without them the demo simulates face tracks: no snapshot to show.
    t.skip('!!! SKIPPED: test photos missing (bash models/fetch-test-photos.sh)');
    return;
  }
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const t0 = Date.now();
  await login(page, 'operator');
  const firstPaint = await page.evaluate(() => performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]));
  console.log('paint timings (ms):', JSON.stringify(firstPaint), 'login to list (ms):', Date.now() - t0);
  const seen = new Set(await page.getByTestId('alert-row').evaluateAll((rows) => rows.map((r) => r.dataset.alertId)));
  // The story's misuse of unit 1-201's card C1004 (a stranger's face, the
  // tenant P005's enrolled photo) arrives on the live feed: no reload.
  const misuse = page.locator('[data-testid=alert-row][data-code=credential_misuse][data-subject="credential:C1004"][data-has-snapshot=true]').first();
  await misuse.waitFor({ timeout: 180_000 });
  const id = await misuse.getAttribute('data-alert-id');
  assert.ok(!seen.has(id), `alert ${id} was already there at login; it must arrive live`);
  await page.screenshot({ path: path.join(SHOTS, 'alerts.png') });
  await misuse.click();
  const snap = page.getByTestId('alert-snapshot');
  const photo = page.getByTestId('person-photo');
  await page.waitForFunction(() => {
    const s = document.querySelector('[data-testid=alert-snapshot]');
    const p = document.querySelector('[data-testid=person-photo]');
    return s && p && s.complete && s.naturalWidth > 0 && p.complete && p.naturalWidth > 0;
  }, null, { timeout: 30_000 });
  assert.ok((await naturalWidth(snap)) > 0);
  assert.ok((await naturalWidth(photo)) > 0);
  await page.screenshot({ path: path.join(SHOTS, 'alert-detail.png') });
  // Dismiss with a reason: the status changes, the transition is listed.
  await page.getByTestId('action-dismiss').click();
  await page.getByTestId('dismiss-reason').fill('控制台测试：核实为访客');
  await page.getByTestId('dismiss-confirm').click();
  await page.locator('[data-testid=alert-status][data-status=dismissed]').waitFor();
  // Dispatch an open alert of building 1 to the grid manager `field`.
  await page.goto(base + '/#/alerts');
  const b1 = page.locator('[data-testid=alert-row][data-building="1"][data-status=open]').first();
  await b1.waitFor({ timeout: 120_000 });
  await b1.click();
  await page.locator('input[name=assignee]').fill('field');
  await page.getByTestId('action-dispatch').click();
  await page.locator('[data-testid=alert-status][data-status=dispatched]').waitFor();
  // Devices.
  await page.goto(base + '/#/devices');
  await page.getByTestId('device-row').first().waitFor();
  assert.ok((await page.getByTestId('device-row').count()) > 0);
  await page.screenshot({ path: path.join(SHOTS, 'devices.png') });
  // The report draws its chart.
  await page.goto(base + '/#/report');
  await page.locator('[data-testid=report-chart] rect').first().waitFor();
  assert.equal(await page.locator('[data-testid=report-chart] rect').count(), 48);
  await page.screenshot({ path: path.join(SHOTS, 'report.png') });
  // An expired (here: revoked) session returns to the login page.
  await page.evaluate(() => sessionStorage.setItem('anju.token', 'expired-token'));
  await page.goto(base + '/#/alerts');
  await page.reload();
  await page.getByTestId('login-submit').waitFor();
  assert.ok(await page.getByTestId('login-username').isVisible());
  await page.close();
});

test('the demo tells the truth: the tenant recognised, one misuse, one tailgating, one watch-list hit', { timeout: 300_000 }, async (t) => {
  if (!PHOTOS) { t.skip('!!! SKIPPED: test photos missing'); return; }
  const r = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'supervisor', password: 'supervisor-demo' }) });
  const { token } = await r.json();
  const get = async (q) => (await (await fetch(`${base}/api/v1/alerts?${q}`, { headers: { Authorization: `Bearer ${token}` } })).json()).alerts;
  // The story's last camera scene at building 1 (after the tenant with his
  // own card and a stranger with it): the tenant followed by the stranger,
  // a tailgating alert. Polled, not timed: a deadlock guard only.
  let tail = [];
  for (let i = 0; i < 180 && tail.length === 0; i++) { tail = await get('code=tailgating'); if (!tail.length) await sleep(1000); }
  assert.equal(tail.length, 1, 'one tailgating alert');
  assert.ok(tail[0].subject.stranger, JSON.stringify(tail[0].subject));
  // The camera shows a face only in the story, and its door's reader is the
  // story's: the only misuse is the stranger with the tenant's card — the
  // tenant's own swipes, recognised, raised none.
  // (Besides the history's: 周杰's card C1008 used by a stranger on four
  // evenings before the demo started.)
  const misuse = (await get('code=credential_misuse')).filter((a) => a.subject.credential !== 'C1008');
  assert.deepEqual(misuse.map((a) => a.subject), [{ credential: 'C1004' }], JSON.stringify(misuse.map((a) => a.subject)));
  assert.equal(misuse[0].evidence.filter((e) => e.kind === 'access').length, 1, 'one misusing swipe');
  const old = (await get('code=credential_misuse')).filter((a) => a.subject.credential === 'C1008');
  assert.equal(old.length, 1, 'the history\'s misuse of C1008');
  assert.equal(old[0].evidence.filter((e) => e.kind === 'access').length, 4, 'four evenings');
  assert.ok(Date.parse(old[0].updated_at) < Date.now() - 5 * 86400e3, 'dated in the history');
  // The watch-list passer-by is a watch-list hit, judged at the edge.
  const hits = await get('code=watchlist_hit');
  assert.equal(hits.length, 1, 'one watch-list hit');
  assert.deepEqual(hits[0].subject, { person: 'W001' });
  // Paging back through these alerts (raised from the camera, the readers,
  // the edge and the centre) with `before`: pages cut from the API's index
  // of recent alerts put together give the whole list. Retried while the
  // demo's alerts change between the requests; a wrong cut would not pass.
  const indexed = async () => Number(((await (await fetch(`${base}/metrics`)).text())
    .match(/^anju_alert_page_index_total (\d+)/m) || [0, 0])[1]);
  const before = await indexed();
  let same = false;
  for (let attempt = 0; attempt < 10 && !same; attempt++) {
    const all = await get('limit=200');
    const paged = [];
    let cursor = all.length ? all[0].id + 1 : 1;
    for (;;) {
      const page = await (await fetch(`${base}/api/v1/alerts?limit=3&before=${cursor}`, { headers: { Authorization: `Bearer ${token}` } })).json();
      paged.push(...page.alerts);
      if (!page.next_before) break;
      cursor = page.next_before;
    }
    same = JSON.stringify(paged) === JSON.stringify(all);
    if (!same) await sleep(500);
  }
  assert.ok(same, 'the pages back put together are the list');
  assert.ok((await indexed()) > before, 'pages back came from the index');
});

test('the seeded history: every temporal family is there when the console opens, with its evidence', { timeout: 300_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await login(page, 'supervisor');
  const want = [
    ['vacancy_suspected', 'unit:FCY/2/101'],
    ['elderly_no_activity', 'person:P004'],
    ['unregistered_long_term_occupant', 'stranger:s-FCY-h1'],
    ['sublet_suspected', 'unit:FCY/2/102'],
    ['overcrowding_suspected', 'unit:FCY/2/102'],
  ];
  for (const [code, subject] of want) {
    await page.locator(`[data-testid=alert-row][data-code=${code}][data-subject="${subject}"]`).first().waitFor({ timeout: 60_000 });
  }
  // Nothing else the history could have raised falsely: no vacancy or
  // elderly alert about anyone else.
  for (const code of ['vacancy_suspected', 'elderly_no_activity', 'sublet_suspected', 'overcrowding_suspected']) {
    const subjects = await page.locator(`[data-testid=alert-row][data-code=${code}]`).evaluateAll((rows) => rows.map((r) => r.dataset.subject));
    assert.ok(subjects.every((x) => want.some(([c, s]) => c === code && s === x)), `${code}: ${subjects}`);
  }
  // The long-term stranger's alert shows the door camera's snapshot.
  if (PHOTOS) {
    await page.locator('[data-testid=alert-row][data-code=unregistered_long_term_occupant]').first().click();
    await page.waitForFunction(() => { const s = document.querySelector('[data-testid=alert-snapshot]'); return s && s.complete && s.naturalWidth > 0; },
      null, { timeout: 30_000 });
    await page.screenshot({ path: path.join(SHOTS, 'long-term-stranger.png') });
  }
  // The units view: where vacancy and sublet start.
  await page.goto(base + '/#/units');
  await page.getByTestId('unit-row').first().waitFor();
  const idle = async (u) => Number(await page.locator(`[data-testid=unit-row][data-unit="${u}"]`).getAttribute('data-idle-days'));
  assert.ok((await idle('FCY/2/101')) >= 60, 'the vacant unit idle for 60 days or more');
  assert.ok((await idle('FCY/2/102')) >= 30, 'the sublet unit\'s occupant unseen for 30 days or more');
  assert.ok((await idle('FCY/1/102')) >= 2, 'the elderly tenant unseen for two days');
  assert.ok((await idle('FCY/1/101')) <= 1, 'an active household');
  await page.locator('[data-testid=unit-row][data-unit="FCY/2/101"] a[data-code=vacancy_suspected]').waitFor();
  await page.locator('[data-testid=unit-row][data-unit="FCY/2/102"] a[data-code=sublet_suspected]').waitFor();
  await page.locator('[data-testid=unit-row][data-unit="FCY/2/102"] a[data-code=overcrowding_suspected]').waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'units.png') });
  // The report's other charts: by entrance, faces seen, alerts of the day.
  await page.goto(base + '/#/report');
  for (const id of ['report-chart', 'report-entrances', 'report-people']) {
    await page.locator(`[data-testid=${id}] rect`).first().waitFor();
  }
  // (Alerts of the day: a bar per code opened or closed today, if any.)
  await page.locator('[data-testid=report-alerts]').waitFor();
  assert.ok((await page.locator('[data-testid=report-entrances] rect').count()) >= 2 * 3, 'three entrances, granted and denied');
  await page.close();
});

test('grid manager on a phone: only their grid, records a visit', { timeout: 300_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
  await login(page, 'field');
  const buildings = await page.getByTestId('alert-row').evaluateAll((rows) => rows.map((r) => `${r.dataset.estate}/${r.dataset.building}`));
  // The demo's field user has grid FCY/G1: buildings 1 and 2 (example
  // site), never an estate-wide alert or another estate's.
  assert.ok(buildings.length > 0, 'field staff see their grid\'s alerts');
  for (const b of buildings) assert.ok(['FCY/1', 'FCY/2'].includes(b), `field staff see ${b}`);
  await page.goto(base + '/#/notices');
  const row = page.getByTestId('notice-row').first();
  await row.waitFor({ timeout: 60_000 });
  await page.screenshot({ path: path.join(SHOTS, 'notices-phone.png') });
  const before = await page.getByTestId('notice-row').count();
  const alertId = await row.getAttribute('data-alert-id');
  await row.getByTestId('notice-text').fill('已走访，租户在家');
  // A photo of the visit, from the phone's camera.
  const jpeg = path.join(ROOT, '.cache/test-photos/obama3.jpg');
  await row.getByTestId('notice-photos').setInputFiles(existsSync(jpeg) ? jpeg
    : { name: 'visit.png', mimeType: 'image/png', buffer: Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64') });
  await row.getByTestId('notice-submit').click();
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=notice-row]').length < n, before);
  // The visit with its photo, on the alert.
  await page.goto(`${base}/#/alert/${alertId}`);
  await page.waitForFunction(() => { const s = document.querySelector('[data-testid=visit-photo]'); return s && s.complete && s.naturalWidth > 0; },
    null, { timeout: 30_000 });
  await page.screenshot({ path: path.join(SHOTS, 'visit-phone.png') });
  await page.close();
});

test('administrator: a person\'s page, a card reported lost, the history, the watch list, a ledger checked', { timeout: 300_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await login(page, 'admin');
  // From the units view to 2-101's tenant (P007, whose card C1006 the
  // simulated readers leave alone).
  await page.goto(base + '/#/units');
  await page.locator('[data-testid=unit-row][data-unit="FCY/2/101"] [data-testid=occupant-link]').first().click();
  const person = page.locator('[data-testid=person-page][data-person=P007]');
  await person.waitFor();
  const card = page.locator('[data-testid=credential-row][data-credential=C1006]');
  assert.equal(await card.getAttribute('data-status'), 'active');
  await card.getByTestId('credential-lost').click();
  await page.locator('[data-testid=credential-row][data-credential=C1006][data-status=lost]').waitFor();
  await page.locator('[data-testid=history-row][data-action=credential_lost]').waitFor();
  // Someone else changes the card meanwhile (here: the API): the page's
  // ETag is stale, the write is refused (412) and the page says so.
  {
    const token = await page.evaluate(() => sessionStorage.getItem('anju.token'));
    const auth = { Authorization: `Bearer ${token}` };
    const r = await fetch(`${base}/api/v1/credentials/card/C1006`, { headers: auth });
    // The page shows the card with the same ETag before it changes.
    await page.locator(`[data-testid=credential-row][data-credential=C1006][data-etag='${r.headers.get('etag')}']`).waitFor();
    const w = await fetch(`${base}/api/v1/credentials/card/C1006/status`, { method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json', 'If-Match': r.headers.get('etag') },
      body: JSON.stringify({ status: 'lost', note: 'again, by phone' }) });
    assert.equal(w.status, 200);
    await page.locator('[data-testid=credential-row][data-credential=C1006]').getByTestId('credential-suspended').click();
    await page.waitForFunction(() => /已被他人修改|someone else/.test(document.querySelector('[data-testid=person-message]')?.textContent || ''));
    assert.equal(await page.locator('[data-testid=credential-row][data-credential=C1006]').getAttribute('data-status'), 'lost');
  }
  // The elderly-care flag, with the person's ETag.
  await page.getByTestId('lives-alone').check();
  await page.locator('[data-testid=history-row][data-action=person_changed]').waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'person.png') });
  // Through the API, as the console wrote it.
  const token = await page.evaluate(() => sessionStorage.getItem('anju.token'));
  const c = await (await fetch(`${base}/api/v1/credentials/card/C1006`, { headers: { Authorization: `Bearer ${token}` } })).json();
  assert.equal(c.status, 'lost');
  assert.equal(c.status_by, 'admin');

  // The watch list: the example's entry, then one added.
  await page.goto(base + '/#/watchlist');
  await page.locator('[data-testid=watch-row][data-person=W001]').waitFor();
  await page.getByTestId('watch-person').fill('W-UI');
  await page.getByTestId('watch-name').fill('测试');
  await page.getByTestId('watch-reason').fill('console test');
  await page.getByTestId('watch-add').click();
  await page.locator('[data-testid=watch-row][data-person=W-UI]').waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'watchlist.png') });

  // A ledger checked before import: its broken row is named by line.
  await page.goto(base + '/#/units');
  const ledger = 'estate,building,unit,area_m2,household,person_id,name,role,id_number,phone,birth_year,lives_alone,lease_start,lease_end\n'
    + 'FCY,1,101,52.3,H001,P001,王伟,tenant,420602198003120018,13800000001,1980,0,2021-03-01,\n';
  await page.getByTestId('ledger-file').setInputFiles({ name: 'ledger.csv', mimeType: 'text/csv', buffer: Buffer.from(ledger) });
  await page.locator('[data-testid=ledger-error][data-line="2"][data-field=id_number]').waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'ledger-check.png') });

  // Users: one created, then promoted; the new user logs in with the role.
  await page.goto(base + '/#/users');
  await page.locator('[data-testid=user-row][data-user=operator]').waitFor();
  await page.getByTestId('user-name').fill('desk');
  await page.getByTestId('user-role').selectOption('operator');
  await page.getByTestId('user-estates').fill('FCY');
  await page.getByTestId('user-password').fill('desk-password');
  await page.getByTestId('user-create').click();
  const desk = page.locator('[data-testid=user-row][data-user=desk]');
  await desk.waitFor();
  await desk.getByTestId('user-role-edit').selectOption('supervisor');
  await page.locator('[data-testid=user-row][data-user=desk][data-role=supervisor]').waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'users.png') });
  const r = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'desk', password: 'desk-password' }) });
  assert.equal(r.status, 200);
  // Promoted: what a supervisor may read and an operator may not.
  const deskToken = (await r.json()).token;
  const rules = await fetch(`${base}/api/v1/estates/FCY/rules`, { headers: { Authorization: `Bearer ${deskToken}` } });
  assert.equal(rules.status, 200, 'desk is a supervisor now');
  await page.close();
});

test('a slow page never replaces the one navigated to next', { timeout: 120_000 }, async () => {
  // The operator opens an alert whose detail is slow to load, and goes back
  // to the list before it arrives: the list stays (the detail, once loaded,
  // must not take the screen). This race failed the operator test on a
  // loaded CI machine: the detail re-rendered after a dismissal replaced the
  // list the test had navigated to.
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await login(page, 'operator');
  const row = page.getByTestId('alert-row').first();
  await row.waitFor();
  const id = await row.getAttribute('data-alert-id');
  let asked;
  const detailAsked = new Promise((r) => { asked = r; });
  await page.route(`**/api/v1/alerts/${id}`, async (route) => { asked(); await sleep(1500); await route.continue().catch(() => {}); });
  const answered = page.waitForResponse((r) => r.url().endsWith(`/api/v1/alerts/${id}`));
  await page.goto(`${base}/#/alert/${id}`);
  await detailAsked;
  await page.goto(`${base}/#/alerts`);
  await page.getByTestId('alert-list').waitFor();
  await answered; // the detail's answer came after the list was shown
  await sleep(500);
  assert.ok(await page.getByTestId('alert-list').isVisible(), 'the list is still shown');
  assert.equal(await page.locator('[data-testid=alert-status]').count(), 0, 'no detail over the list');
  await page.close();
});
