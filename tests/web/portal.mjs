// portal.mjs - the browser half of tests/integration/test_portal.sh: Debian's
// Chromium, headless, driven by playwright-core through the web portal and
// a VNC desktop in noVNC, as a user would (issue 15).
//
//   node tests/web/portal.mjs      (settings in the environment)
//
//   PT_URL        the gateway's HTTPS front, https://127.0.0.1:PORT
//   PT_USER, PT_PASSWORD   a user entitled to the three pools below
//   PT_VNC        a VNC desktop pool of Xvnc sessions (a shell in an xterm)
//   PT_RDP        an RDP pool
//   PT_FULL       a VNC pool with no capacity
//   PT_DIRECT     a program: `PT_DIRECT ID` prints tests/tools/vnc-probe's
//                 line (size=WxH ... painted=N hash=H) for session ID,
//                 connected to it directly, not through the gateway
//   PT_ADMIN      a program: `PT_ADMIN message ID TEXT` and
//                 `PT_ADMIN disconnect ID`, an administrator's action on
//                 session ID through the broker's admin API
//   PT_OUT        a directory for results.json (what the shell half checks
//                 further) and a screenshot of the page a step failed on
//
// One "ok: ..." line per step; the first failure prints "FAIL: ..." and
// exits 1.  A page's uncaught exception, a CSP violation or a file of the
// portal or noVNC the gateway does not serve fails the run too.

import { chromium } from 'playwright-core';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

function env(name) {
	const v = process.env[name];
	if (!v) {
		console.log(`FAIL: ${name} is not set (see the top of ${path.basename(import.meta.url)})`);
		process.exit(2);
	}
	return v;
}

const URL_BASE = env('PT_URL').replace(/\/$/, '');
const USER = env('PT_USER');
const PASSWORD = env('PT_PASSWORD');
const VNC = env('PT_VNC');
const RDP = env('PT_RDP');
const FULL = env('PT_FULL');
const DIRECT = env('PT_DIRECT');
const OUT = env('PT_OUT');

const CHROMIUM = process.env.PT_CHROMIUM || '/usr/bin/chromium';
const results = {};
const problems = []; // CSP violations, page errors, files not served

class Failure extends Error {}

function check(cond, message) {
	if (!cond)
		throw new Failure(message);
}

function ok(message) {
	console.log(`ok: ${message}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls FN until it returns a truthy value; that value, or a Failure
 * with MESSAGE (FN's last value appended) after SECONDS. */
async function until(seconds, message, fn) {
	const end = Date.now() + seconds * 1000;
	let last;
	for (;;) {
		try {
			last = await fn();
		} catch (e) {
			// The page navigated while it was being read: read it again.
			if (e instanceof Failure || !/context was destroyed|navigat/i.test(e.message))
				throw e;
			last = null;
		}
		if (last)
			return last;
		if (Date.now() > end)
			throw new Failure(`${message} (after ${seconds} s; last: ${JSON.stringify(last)})`);
		await sleep(250);
	}
}

// ---- what the pages show ---------------------------------------------------

const alertText = (page) => page.evaluate(() => {
	const a = document.querySelector('[role=alert]');
	return a ? a.textContent.trim() : null;
});

const pageState = (page) => page.evaluate(() => document.body.dataset.state || '');

/** The noVNC canvas as vnc-probe describes a framebuffer: its size, the
 * pixels that are not black and its hash: FNV-1a (64 bits) over every
 * pixel's R, G, B bytes, from vnc-probe's offset basis 1469598103934665603
 * (FNV's own is 14695981039346656037: the probe's lacks a digit, and it is
 * the probe's hash this must equal). */
function canvasLine(page) {
	return page.evaluate(() => {
		const c = document.querySelector('#screen canvas');
		if (!c || !c.width || !c.height)
			return null;
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		// 64-bit FNV-1a in two 32-bit halves: the prime is 2^40 + 0x1b3.
		let hi = 0x14650fb0, lo = 0x739d0383, painted = 0;
		for (let i = 0; i < d.length; i += 4) {
			if (d[i] | d[i + 1] | d[i + 2])
				painted++;
			for (let b = 0; b < 3; b++) {
				lo = (lo ^ d[i + b]) >>> 0;
				const p = lo * 0x1b3;
				const carry = Math.floor(p / 4294967296);
				hi = (Math.imul(hi, 0x1b3) + carry + (lo << 8)) >>> 0;
				lo = p >>> 0;
			}
		}
		const hex = (n) => n.toString(16).padStart(8, '0');
		return `size=${c.width}x${c.height} painted=${painted} hash=${hex(hi)}${hex(lo)}`;
	});
}

async function direct(session) {
	try {
		const { stdout } = await run(DIRECT, [String(session)], { timeout: 20000 });
		return stdout.trim();
	} catch (e) {
		return `direct probe failed: ${e.stderr || e.message}`;
	}
}

const field = (line, key) => {
	const m = line && line.match(new RegExp(`${key}=(\\S+)`));
	return m ? m[1] : null;
};

/** The canvas shows what a direct connection to the session sees, pixel
 * for pixel (the desktop may still be drawing: asked again until both
 * agree). */
async function samePixels(page, session, what) {
	let seen = null, truth = null;
	await until(30, `${what}: the browser does not show the session's pixels`, async () => {
		seen = await canvasLine(page);
		truth = await direct(session);
		results.last = { seen, truth };
		return seen && field(seen, 'hash') && field(seen, 'hash') === field(truth, 'hash') &&
			Number(field(seen, 'painted')) > 1000 ? seen : null;
	});
	ok(`${what}: the canvas shows the session's pixels (${seen}; direct: ${truth})`);
	return seen;
}

/** URL in a fresh document (a page.goto that changes only the hash of
 * desktop.html would keep the last document's state for a moment). */
async function open(page, url) {
	await page.goto('about:blank');
	return page.goto(url);
}

// ---- the steps ---------------------------------------------------------------

async function headersOf(page, url) {
	const res = await page.goto(url);
	check(res && res.status() === 200, `GET ${url}: ${res && res.status()}`);
	const h = res.headers();
	const csp = h['content-security-policy'] || '';
	check(/script-src 'self'/.test(csp) && !/unsafe-inline|unsafe-eval/.test(csp),
		`GET ${url}: the Content-Security-Policy is "${csp}"`);
	check(/default-src 'self'/.test(csp) && /frame-ancestors 'none'/.test(csp),
		`GET ${url}: the Content-Security-Policy is "${csp}"`);
	check((h['x-frame-options'] || '').toUpperCase() === 'DENY', `GET ${url}: X-Frame-Options ${h['x-frame-options']}`);
	check(/max-age=\d+/.test(h['strict-transport-security'] || ''), `GET ${url}: no HSTS`);
	check(h['x-content-type-options'] === 'nosniff', `GET ${url}: X-Content-Type-Options ${h['x-content-type-options']}`);
	return res;
}

async function signIn(page, password) {
	await page.locator('input[name=username]').fill(USER);
	await page.locator('input[name=password]').fill(password);
	const [res] = await Promise.all([
		page.waitForResponse((r) => r.url().endsWith('/api/v1/login')),
		page.getByRole('button', { name: 'Sign in' }).click(),
	]);
	return res;
}

async function stepSignInForm(page) {
	await headersOf(page, `${URL_BASE}/`);
	await page.waitForSelector('#signin-section:not([hidden])');
	// The labels name the inputs (what a screen reader says).
	check(await page.getByLabel('User name').getAttribute('name') === 'username', 'no input labelled "User name"');
	check(await page.getByLabel('Password').getAttribute('name') === 'password', 'no input labelled "Password"');
	check(await page.locator('meta[name=viewport]').count() === 1, 'no viewport meta');
	const csrf = (await page.context().cookies()).find((c) => c.name === 'portico_csrf');
	check(csrf && !csrf.httpOnly, `the page did not set a readable portico_csrf cookie: ${JSON.stringify(csrf)}`);
	ok('the sign-in form, under the CSP, with its labels');
}

async function stepWrongPassword(page) {
	const res = await signIn(page, `${PASSWORD}-wrong`);
	check(res.status() === 401, `a wrong password answered ${res.status()}`);
	const text = await until(10, 'no refusal shown for a wrong password', () => alertText(page));
	check(/login failed/i.test(text), `the refusal says "${text}"`);
	check(await page.locator('#signin-section').isVisible(), 'the sign-in form went away after a refusal');
	check(!(await page.context().cookies()).some((c) => c.name === 'portico_session'), 'a refused login set a session cookie');
	ok(`a wrong password is refused: "${text}" in role=alert`);
}

async function stepSignIn(page) {
	// By keyboard: the user name, Tab to the password, Enter.
	await page.locator('input[name=username]').fill('');
	await page.locator('input[name=username]').focus();
	await page.keyboard.type(USER);
	await page.keyboard.press('Tab');
	check(await page.evaluate(() => document.activeElement.name) === 'password', 'Tab from the user name does not reach the password');
	await page.keyboard.type(PASSWORD);
	const [res] = await Promise.all([
		page.waitForResponse((r) => r.url().endsWith('/api/v1/login')),
		page.keyboard.press('Enter'),
	]);
	check(res.status() === 200, `sign-in answered ${res.status()}: ${await res.text()}`);
	const body = await res.json();
	check(body.user === USER && !('token' in body), `the login answer: ${JSON.stringify(body)}`);
	await page.waitForSelector('[data-resource]');
	const cookie = (await page.context().cookies()).find((c) => c.name === 'portico_session');
	check(cookie && cookie.httpOnly && cookie.secure && cookie.sameSite === 'Strict',
		`the session cookie: ${JSON.stringify(cookie)}`);
	check(!(await page.evaluate(() => document.cookie)).includes('portico_session'), 'the page can read the session cookie');
	check(await alertText(page) === '', `an alert after signing in: ${await alertText(page)}`);
	ok('signed in by keyboard; the token is in an HttpOnly, Secure, SameSite=Strict cookie only');
}

async function stepResources(page) {
	for (const [name, kind, proto] of [[VNC, 'Desktop', 'VNC'], [RDP, 'Desktop', 'RDP'], [FULL, 'Desktop', 'VNC']]) {
		const r = page.locator(`[data-resource="${name}"]`);
		check(await r.count() === 1, `resource ${name} is not listed`);
		const text = await r.textContent();
		check(text.includes(name) && text.includes(kind) && text.includes(proto), `resource ${name} shows "${text}"`);
		check(await r.evaluate((e) => e.tagName) === 'BUTTON', `resource ${name} is not a button`);
	}
	ok(`resources listed with kind and protocol: ${VNC}, ${RDP}, ${FULL}`);
}

const rdpValue = (file, key) => {
	const m = file.match(new RegExp(`^${key}:s:(.*?)\\r?$`, 'm'));
	return m ? m[1] : null;
};

async function stepRdp(page) {
	await page.locator(`[data-resource="${RDP}"]`).click();
	await page.waitForSelector('#rdp:not([hidden])');
	const command = (await page.textContent('#rdp-command')).trim();
	const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#rdp-file').click()]);
	const file = fs.readFileSync(await download.path(), 'utf8');
	check(download.suggestedFilename().endsWith('.rdp'), `the download is named ${download.suggestedFilename()}`);
	check(rdpValue(file, 'full address') && rdpValue(file, 'username') === USER, `the .rdp file: ${JSON.stringify(file)}`);
	results.rdp_command = command;
	results.rdp_file = file;
	// The command goes where the file goes, with a ticket of its own: through
	// the RD Gateway when the file does, else to the RDP port.
	let m;
	if (rdpValue(file, 'gatewayaccesstoken')) {
		m = command.match(/^xfreerdp \/v:(\S+) \/g:(\S+) \/gat:([A-Za-z0-9_-]{40,}) \/u:(\S+) \/cert:tofu$/);
		check(m && m[1] === rdpValue(file, 'full address') && m[2] === rdpValue(file, 'gatewayhostname') && m[4] === USER,
			`the xfreerdp command "${command}" is not the .rdp file's ${JSON.stringify(file)}`);
		results.rdp_file_ticket = rdpValue(file, 'gatewayaccesstoken');
		results.rdp_ticket = m[3];
	} else {
		m = command.match(/^xfreerdp \/v:(\S+) '\/load-balance-info:Cookie: msts=([A-Za-z0-9_-]{40,})' \/u:(\S+) \/cert:tofu$/);
		check(m && m[1] === rdpValue(file, 'full address') && m[3] === USER,
			`the xfreerdp command "${command}" is not the .rdp file's ${JSON.stringify(file)}`);
		results.rdp_file_ticket = (rdpValue(file, 'loadbalanceinfo') || '').replace(/^Cookie: msts=/, '');
		results.rdp_ticket = m[2];
	}
	check(results.rdp_ticket !== results.rdp_file_ticket, 'the command and the file share one ticket');
	ok(`RDP resource: the .rdp file and "${command.replace(/[A-Za-z0-9_-]{40,}/, '…')}"`);
}

async function openDesktop(page, how) {
	await until(90, `desktop ${VNC} did not connect`, async () => {
		const s = await pageState(page);
		if (s === 'failed')
			throw new Failure(`desktop ${VNC} failed: ${await alertText(page)}`);
		return s === 'connected';
	});
	const session = Number(await page.evaluate(() => document.body.dataset.session));
	check(Number.isSafeInteger(session) && session > 0, 'desktop.html names no session');
	ok(`${how}: desktop ${VNC} connected, session ${session}`);
	return session;
}

async function stepDesktop(page) {
	// Space on the focused resource, as a keyboard user would.
	await page.locator(`[data-resource="${VNC}"]`).focus();
	await Promise.all([page.waitForURL(/\/desktop\.html#/), page.keyboard.press('Space')]);
	check(page.url() === `${URL_BASE}/desktop.html#${encodeURIComponent(VNC)}`, `Space led to ${page.url()}`);
	const session = await openDesktop(page, 'Space on the resource');
	results.session = session;
	results.first = await samePixels(page, session, 'first connection');
	// The session has the size of the browser's window (the launch's
	// geometry, then noVNC's resizeSession).
	const box = await page.locator('#screen').boundingBox();
	const size = field(results.first, 'size');
	check(size === `${Math.round(box.width)}x${Math.round(box.height)}`,
		`the session is ${size}, the window's screen area ${box.width}x${box.height}`);
	return session;
}

async function stepResize(page, session) {
	await page.setViewportSize({ width: 880, height: 600 });
	const box = await page.locator('#screen').boundingBox();
	const want = `${Math.round(box.width)}x${Math.round(box.height)}`;
	await until(15, `the session was not resized to the window (${want})`, async () =>
		field(await direct(session), 'size') === want && field(await canvasLine(page), 'size') === want);
	ok(`the window resized: the session follows (${want})`);
}

/** A point of the canvas, in page coordinates. */
async function at(page, x, y) {
	const box = await page.locator('#screen canvas').boundingBox();
	return { x: box.x + x, y: box.y + y };
}

async function stepKeyboardAndClipboard(page) {
	// The xterm at the top left of the session: its first line is the
	// shell's prompt.  Keys typed in the browser go to it.
	const word = `portal${process.pid}`;
	let p = await at(page, 60, 60);
	await page.mouse.click(p.x, p.y);
	await page.keyboard.type(word, { delay: 20 });
	// A triple click selects the line; xterm makes it the PRIMARY selection,
	// which Xvnc sends as the clipboard: the panel shows it.
	p = await at(page, 40, 14);
	const text = () => page.locator('#clipboard-text').inputValue();
	await until(10, 'the remote clipboard does not reach the panel', async () => {
		await page.mouse.click(p.x, p.y, { clickCount: 3 });
		await sleep(300);
		return (await text()).includes(word);
	});
	ok(`keys reach the desktop and its clipboard reaches the page ("${(await text()).trim()}")`);
	// Local text to the desktop: sent from the panel, pasted in the xterm
	// with the middle button, then selected again.
	await page.getByRole('button', { name: 'Clipboard' }).click();
	check(await page.locator('#clipboard').isVisible(), 'the clipboard panel does not open');
	const sent = `sent${process.pid}`;
	await page.locator('#clipboard-text').fill(sent);
	await page.getByRole('button', { name: 'Send to the desktop' }).click();
	await sleep(300);
	p = await at(page, 60, 60);
	await page.mouse.click(p.x, p.y, { button: 'middle' });
	p = await at(page, 40, 14);
	await until(10, 'the text sent from the panel was not pasted on the desktop', async () => {
		await page.mouse.click(p.x, p.y, { clickCount: 3 });
		await sleep(300);
		return (await text()).includes(word + sent);
	});
	ok(`the panel's text reaches the desktop's clipboard ("${(await text()).trim()}")`);
	await page.getByRole('button', { name: 'Close' }).click();
	// F8 leaves the desktop for the toolbar (the canvas takes every other key).
	await page.locator('#screen canvas').focus();
	await page.keyboard.press('F8');
	check(await page.evaluate(() => document.activeElement.id) === 'clipboard-toggle', 'F8 does not reach the toolbar');
	ok('F8 leaves the desktop for the toolbar');
}

async function stepReload(page, session) {
	await page.reload();
	const again = await openDesktop(page, 'page reloaded');
	check(again === session, `the reload reached session ${again}, not ${session}`);
	results.reload = await samePixels(page, session, 'after the reload');
}

/* An administrator's message shows on the desktop page, and an
 * administrator's disconnect ends it with the reason, both within 2 s. */
async function stepAdmin(page, session) {
	const text = 'The server restarts at 18:00.\nSave your work.';
	let t0 = Date.now();
	await run(env('PT_ADMIN'), ['message', String(session), text], { timeout: 10000 });
	await until(2, 'the message did not show within 2 s', async () =>
		await page.locator('#notice').isVisible() &&
		(await page.textContent('#notice-text')) === text);
	ok(`an administrator's message shows on the desktop page (${Date.now() - t0} ms)`);
	await page.getByRole('button', { name: 'Dismiss' }).click();
	check(!(await page.locator('#notice').isVisible()), 'Dismiss left the message');
	t0 = Date.now();
	await run(env('PT_ADMIN'), ['disconnect', String(session)], { timeout: 10000 });
	await until(2, 'the desktop was not closed within 2 s', async () => await pageState(page) === 'disconnected');
	const why = await alertText(page);
	check(/disconnected by an administrator/.test(why), `the page says: "${why}"`);
	ok(`an administrator's disconnect closes the desktop page (${Date.now() - t0} ms): "${why}"`);
	await page.getByRole('button', { name: 'Connect again' }).click();
	check(await openDesktop(page, 'Connect again after the disconnect') === session, 'Connect again opened another session');
}

async function stepDisconnect(page, session) {
	await Promise.all([page.waitForURL(`${URL_BASE}/`), page.getByRole('button', { name: 'Disconnect' }).click()]);
	const row = page.locator(`[data-session="${session}"]`);
	await until(15, `session ${session} is not listed as disconnected in the portal`, async () => {
		if (await row.count() === 1 && /disconnected/.test(await row.textContent()))
			return true;
		await page.getByRole('button', { name: 'Refresh' }).click();
		return false;
	});
	ok(`Disconnect: back on the portal, session ${session} disconnected there`);
	// Reconnect from the session's row opens it again.
	await Promise.all([page.waitForURL(/\/desktop\.html#/), row.getByRole('button', { name: /Reconnect/ }).click()]);
	check(await openDesktop(page, 'Reconnect from the portal') === session, 'Reconnect opened another session');
	await Promise.all([page.waitForURL(`${URL_BASE}/`), page.getByRole('button', { name: 'Disconnect' }).click()]);
}

async function stepLogOff(page, session) {
	const row = page.locator(`[data-session="${session}"]`);
	await row.waitFor();
	page.once('dialog', (d) => d.accept());
	await row.getByRole('button', { name: /Log off/ }).click();
	await until(15, `session ${session} is still listed after Log off`, async () => await row.count() === 0);
	const status = (await page.textContent('[role=status]')).trim();
	check(/logged off/.test(status), `the status after log off: "${status}"`);
	results.logged_off = session;
	ok(`Log off: session ${session} gone from the portal ("${status}")`);
}

async function stepNoCapacity(page) {
	await Promise.all([page.waitForURL(/\/desktop\.html#/), page.locator(`[data-resource="${FULL}"]`).click()]);
	const text = await until(15, `no refusal for pool ${FULL}`, async () =>
		(await pageState(page)) === 'failed' && alertText(page));
	check(text.includes(`no session available in pool ${FULL}`), `pool ${FULL}: "${text}"`);
	ok(`a pool without capacity: "${text}" in role=alert`);
}

async function stepHostileNames(page) {
	const evil = '<img src=x onerror="window.pwned=1">';
	await open(page, `${URL_BASE}/desktop.html#${encodeURIComponent(evil)}`);
	let text = await until(15, 'no refusal for a resource named with markup', async () =>
		(await pageState(page)) === 'failed' && alertText(page));
	check(await page.evaluate(() => window.pwned === undefined && !document.querySelector('img')),
		'markup in a resource name became part of the page');
	ok(`a name with markup: refused as text, nothing of it in the page ("${text}")`);
	for (const name of ['../../admin/pools', '%zz', 'x'.repeat(3000)]) {
		await open(page, `${URL_BASE}/desktop.html#${name.startsWith('%') ? name : encodeURIComponent(name)}`);
		text = await until(15, `no refusal for a resource named ${name.slice(0, 40)}`, async () =>
			(await pageState(page)) === 'failed' && alertText(page));
		ok(`resource "${name.slice(0, 20)}${name.length > 20 ? '…' : ''}" refused: "${text.slice(0, 100)}"`);
	}
}

async function stepBadTicket(page) {
	// A launch answer with a ticket the broker never issued: the gateway
	// closes the WebSocket, and the page says why.
	await page.route('**/api/v1/resources/*/launch', (route) => route.fulfill({
		status: 200,
		contentType: 'application/json',
		body: JSON.stringify({ ticket: 'A'.repeat(43), gateway: 'x:5900', protocol: 'vnc', reconnect: false,
			expires_in_ms: 60000, session: { id: 1 } }),
	}));
	await open(page, `${URL_BASE}/desktop.html#${encodeURIComponent(VNC)}`);
	const text = await until(15, 'no refusal for a forged ticket', async () =>
		(await pageState(page)) === 'failed' && alertText(page));
	await page.unroute('**/api/v1/resources/*/launch');
	// The gateway's reason, from RFB's SecurityResult or the close frame.
	check(/^The gateway (refused|closed) the connection: \S/.test(text), `a forged ticket: "${text}"`);
	results.bad_ticket = text;
	ok(`a forged ticket: "${text}"`);
}

async function stepSignOutAndBack(page) {
	await page.goto(`${URL_BASE}/`);
	await page.waitForSelector('[data-resource]');
	await page.getByRole('button', { name: 'Sign out' }).click();
	await page.waitForSelector('#signin-section:not([hidden])');
	const res = await page.request.get(`${URL_BASE}/api/v1/resources`);
	check(res.status() === 401, `after signing out, GET resources answered ${res.status()}`);
	ok('Sign out: the sign-in form, and the API answers 401');
	// A desktop opened while signed out: the sign-in form, then the desktop.
	await page.goto(`${URL_BASE}/desktop.html#${encodeURIComponent(VNC)}`);
	await page.waitForURL(`${URL_BASE}/`);
	await page.waitForSelector('#signin-section:not([hidden])');
	await signIn(page, PASSWORD);
	await page.waitForURL(/\/desktop\.html#/);
	results.after_signin = await openDesktop(page, 'signed in from the desktop page');
	await Promise.all([page.waitForURL(`${URL_BASE}/`), page.getByRole('button', { name: 'Disconnect' }).click()]);
}

async function stepPhone(page) {
	await page.setViewportSize({ width: 360, height: 740 });
	await page.goto(`${URL_BASE}/`);
	await page.waitForSelector('[data-resource]');
	const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
	check(scroll <= inner, `on a 360 px wide screen the portal is ${scroll} px wide`);
	const b = await page.locator(`[data-resource="${VNC}"]`).boundingBox();
	check(b.width >= 200 && b.height >= 44, `a resource on a phone is ${b.width}x${b.height}`);
	ok(`readable on a phone: 360 px wide, no sideways scrolling`);
}

// ---- main ----------------------------------------------------------------------

async function main() {
	fs.mkdirSync(OUT, { recursive: true });
	const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'portico-chromium-'));
	const context = await chromium.launchPersistentContext(profile, {
		executablePath: CHROMIUM,
		headless: true,
		ignoreHTTPSErrors: true,
		viewport: { width: 1024, height: 700 },
		acceptDownloads: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync'],
	});
	const page = context.pages()[0] || await context.newPage();
	page.on('pageerror', (e) => problems.push(`uncaught in ${page.url()}: ${e.message}`));
	page.on('console', (m) => {
		if (/Content Security Policy/i.test(m.text()))
			problems.push(`CSP: ${m.text()}`);
	});
	page.on('response', (r) => {
		const u = new URL(r.url());
		if (u.origin === new URL(URL_BASE).origin && !u.pathname.startsWith('/api/') &&
		    !u.pathname.startsWith('/ws/') && r.status() >= 400)
			problems.push(`${r.status()} for ${u.pathname}`);
	});
	let step = 'start';
	try {
		const steps = [
			['sign-in form', () => stepSignInForm(page)],
			['wrong password', () => stepWrongPassword(page)],
			['sign in', () => stepSignIn(page)],
			['resources', () => stepResources(page)],
			['rdp', () => stepRdp(page)],
			['desktop', async () => { results.session = await stepDesktop(page); }],
			['resize', () => stepResize(page, results.session)],
			['keyboard and clipboard', () => stepKeyboardAndClipboard(page)],
			['reload', () => stepReload(page, results.session)],
			['admin', () => stepAdmin(page, results.session)],
			['disconnect', () => stepDisconnect(page, results.session)],
			['log off', () => stepLogOff(page, results.session)],
			['no capacity', () => stepNoCapacity(page)],
			['hostile names', () => stepHostileNames(page)],
			['bad ticket', () => stepBadTicket(page)],
			['sign out', () => stepSignOutAndBack(page)],
			['phone', () => stepPhone(page)],
		];
		const only = process.env.PT_STEPS ? process.env.PT_STEPS.split(',') : null;
		for (const [name, fn] of steps) {
			if (only && !only.includes(name))
				continue;
			step = name;
			await fn();
			check(problems.length === 0, problems.join('; '));
		}
	} catch (e) {
		const shot = path.join(OUT, `failed-${step.replace(/\W+/g, '-')}.png`);
		await page.screenshot({ path: shot }).catch(() => {});
		console.log(`FAIL: ${step}: ${e instanceof Failure ? e.message : e.stack}`);
		console.log(`  (page ${page.url()}, screenshot ${shot})`);
		results.failed = step;
	} finally {
		fs.writeFileSync(path.join(OUT, 'results.json'), JSON.stringify(results, null, 1));
		await context.close().catch(() => {});
		fs.rmSync(profile, { recursive: true, force: true });
	}
	process.exit(results.failed ? 1 : 0);
}

main();
