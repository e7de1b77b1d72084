// bench-first-frame.mjs - the browser half of tests/bench/portal.sh:
// Debian's Chromium, headless, driven by playwright-core, times what a
// user waits for from opening the portal to seeing their desktop in noVNC.
//
//   node tests/web/bench-first-frame.mjs      (settings in the environment)
//
//   PT_URL        the gateway's HTTPS front, https://127.0.0.1:PORT
//   PT_USER, PT_PASSWORD   a user entitled to PT_VNC
//   PT_VNC        a VNC desktop pool whose screen is not all black
//   PT_ROUNDS     rounds to record [20], after one unrecorded round
//   PT_PEER       a program run after each browser round (the peer, timed
//                 by itself: its stdout goes on the round's line as peer=)
//   PT_TRACE      1: "trace" lines: the portal page's resource timing
//                 after the sign-in, desktop.html's after the first frame,
//                 and when /ws/vnc was created and opened
//                 and its first 12 messages and sends (ms:bytes), all in ms
//                 from the page's navigation start: what the waits are
//                 made of.  It wraps WebSocket, so
//                 leave it off for the figures.
//
// Each round is a fresh browser context (no cookies, no cache: a first
// visit) in one browser, launched once before the clock ever starts:
//   form    from page.goto(PT_URL/) until the sign-in form is shown (the
//           page, its modules, the API's 401)
//   signin  from clicking "Sign in" (user name and password filled in
//           before: typing is the user's time, not the system's) until
//           the resource is listed (POST login: PAM at the broker through
//           the gateway's /api/v1/; GET resources and sessions)
//   frame   from clicking the resource (desktop.html, noVNC's modules, the
//           launch, /ws/vnc, RFB through the gateway) until the first frame
//           that is not all black is on noVNC's canvas
//   total   their sum: what the user waits for
// Each click's time includes playwright's own (checking that the element
// is visible and enabled, then dispatching the events: a few ms here).
// The first frame is seen in the page itself: an init script wraps
// CanvasRenderingContext2D.drawImage, which noVNC's Display.flip() uses to
// put a finished update on the visible canvas, and reads the canvas after
// each such draw until a pixel is not black; it stamps that moment with
// the page's Date.now() (the same wall clock as this script's).  A 100 ms
// poll of the canvas backs it up, and the line says which saw it (src=).
//
// One line per round:
//   round N total=MS form=MS signin=MS frame=MS src=draw|poll size=WxH peer=...
// ("warmup" for the unrecorded round); the first failure prints
// "FAIL: ..." and exits 1.

import { chromium } from 'playwright-core';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

function env(name, fallback) {
	const v = process.env[name] || fallback;
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
const ROUNDS = Number(env('PT_ROUNDS', '20'));
const PEER = process.env.PT_PEER || '';
const TRACE = process.env.PT_TRACE === '1';
const CHROMIUM = process.env.PT_CHROMIUM || '/usr/bin/chromium';

class Failure extends Error {}

// Runs in every document of the context, before its own scripts.
function firstFrameHook(tracing) {
	if (!location.pathname.endsWith('/desktop.html'))
		return;
	if (tracing) {
		// /ws/vnc's life, for the trace lines (PT_TRACE).
		const w = window.__ptWs = {};
		window.WebSocket = new Proxy(window.WebSocket, {
			construct(target, args) {
				const ws = Reflect.construct(target, args);
				w.created = performance.now();
				ws.addEventListener('open', () => { w.open = performance.now(); });
				w.messages = [];
				w.sends = [];
				const send = ws.send;
				ws.send = function (d) {
					if (w.sends.length < 12)
						w.sends.push(`${performance.now().toFixed(1)}:${d.byteLength ?? d.length}`);
					return send.call(this, d);
				};
				ws.addEventListener('message', (e) => {
					w.message = w.message || performance.now();
					if (w.messages.length < 12)
						w.messages.push(`${performance.now().toFixed(1)}:${e.data.byteLength ?? e.data.length}`);
				});
				return ws;
			},
		});
	}
	const screenCanvas = () => document.querySelector('#screen canvas');
	// Not all black: any pixel with a colour (RGBA in memory: R, G, B are
	// the low three bytes of each little-endian 32-bit word).
	const painted = (c) => {
		if (!c || !c.width || !c.height)
			return false;
		const d = new Uint32Array(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.buffer);
		for (let i = 0; i < d.length; i++)
			if (d[i] & 0x00ffffff)
				return true;
		return false;
	};
	const seen = (src, c) => {
		if (window.__ptFirstFrame)
			return;
		window.__ptFirstFrame = { at: Date.now(), src, size: `${c.width}x${c.height}` };
		CanvasRenderingContext2D.prototype.drawImage = orig;
		clearInterval(timer);
	};
	const orig = CanvasRenderingContext2D.prototype.drawImage;
	CanvasRenderingContext2D.prototype.drawImage = function (...args) {
		const r = orig.apply(this, args);
		if (!window.__ptFirstFrame && this.canvas === screenCanvas() && painted(this.canvas))
			seen('draw', this.canvas);
		return r;
	};
	const timer = setInterval(() => {
		const c = screenCanvas();
		if (painted(c))
			seen('poll', c);
	}, 100);
}

async function peer() {
	if (!PEER)
		return '';
	try {
		const { stdout } = await run(PEER, [], { timeout: 30000 });
		return stdout.trim().replace(/\s+/g, ',');
	} catch (e) {
		throw new Failure(`the peer ${PEER} failed: ${(e.stderr || e.message).trim()}`);
	}
}

/** The page's navigation and resources, ms from its navigation start:
 * start, end, connection set-up (0: a connection reused), protocol; and
 * the first frame (at: the page's Date.now(), 0: none yet). */
async function trace(page, frameAt) {
	const lines = await page.evaluate((at) => {
		const w = window.__ptWs || {};
		const out = [];
		const t0 = performance.timeOrigin;
		for (const e of [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]) {
			const conn = e.connectEnd > e.connectStart ? (e.connectEnd - e.connectStart).toFixed(1) : '0';
			out.push(`${e.name.replace(/^https:\/\/[^/]+/, '')} start=${e.startTime.toFixed(1)} ` +
				`end=${e.responseEnd.toFixed(1)} connect=${conn} ${e.nextHopProtocol}`);
		}
		if (w.created)
			out.push(`/ws/vnc created=${w.created.toFixed(1)} open=${(w.open || NaN).toFixed(1)} ` +
				`first-message=${(w.message || NaN).toFixed(1)} messages(at:bytes)=${w.messages.join(',')} sends=${w.sends.join(',')}`);
		if (at)
			out.push(`first frame at ${(at - t0).toFixed(1)}`);
		return out;
	}, frameAt);
	for (const l of lines)
		console.log(`trace ${l}`);
}

async function round(browser, label) {
	const context = await browser.newContext({
		ignoreHTTPSErrors: true,
		viewport: { width: 1024, height: 700 },
		serviceWorkers: 'block',
	});
	const problems = [];
	try {
		await context.addInitScript(firstFrameHook, TRACE);
		const page = await context.newPage();
		page.on('pageerror', (e) => problems.push(`uncaught in ${page.url()}: ${e.message}`));
		const t0 = Date.now();
		await page.goto(`${URL_BASE}/`);
		await page.waitForSelector('#signin-section:not([hidden])');
		const tForm = Date.now();
		await page.locator('input[name=username]').fill(USER);
		await page.locator('input[name=password]').fill(PASSWORD);
		const tClick1 = Date.now();
		await page.getByRole('button', { name: 'Sign in' }).click();
		const res = page.locator(`[data-resource="${VNC}"]`);
		await res.waitFor({ timeout: 30000 });
		const tSignin = Date.now();
		if (TRACE)
			await trace(page, 0);
		const tClick2 = Date.now();
		await res.click();
		const handle = await page.waitForFunction(() => window.__ptFirstFrame ||
			(document.body.dataset.state === 'failed' &&
			 { failed: (document.querySelector('[role=alert]') || {}).textContent || 'failed' }),
		null, { timeout: 60000, polling: 50 });
		const f = await handle.jsonValue();
		if (f.failed)
			throw new Failure(`desktop ${VNC} failed: ${f.failed}`);
		if (problems.length)
			throw new Failure(problems.join('; '));
		if (TRACE)
			await trace(page, f.at);
		const p = await peer();
		const form = tForm - t0, signin = tSignin - tClick1, frame = f.at - tClick2;
		console.log(`round ${label} total=${form + signin + frame} form=${form} signin=${signin} ` +
			`frame=${frame} src=${f.src} size=${f.size}${PEER ? ` peer=${p}` : ''}`);
	} finally {
		await context.close().catch(() => {});
	}
}

async function main() {
	const browser = await chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync'],
	});
	let rc = 0;
	try {
		await round(browser, 'warmup');
		for (let i = 1; i <= ROUNDS; i++)
			await round(browser, String(i));
	} catch (e) {
		console.log(`FAIL: ${e instanceof Failure ? e.message : e.stack}`);
		rc = 1;
	} finally {
		await browser.close().catch(() => {});
	}
	process.exit(rc);
}

main();
