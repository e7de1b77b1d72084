// portal_mfa.mjs - the browser half of the portal's part of
// tests/integration/test_broker_mfa.sh: Debian's Chromium, headless, driven
// by playwright-core, signs in through the web portal to a broker whose PAM
// stack asks for a one-time code after the password (issue 16).
//
//   node tests/web/portal_mfa.mjs      (settings in the environment)
//
//   PT_URL        the gateway's HTTPS front, https://127.0.0.1:PORT
//   PT_USER, PT_PASSWORD   a user whose PAM asks for a code
//   PT_CODE       the next good code for that user
//   PT_PROMPT     text PAM's question contains (shown as the field's label)
//
// One "ok: ..." line per step; the first failure prints "FAIL: ..." and
// exits 1.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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
const CODE = env('PT_CODE');
const PROMPT = env('PT_PROMPT');
const CHROMIUM = process.env.PT_CHROMIUM || '/usr/bin/chromium';

class Failure extends Error {}

function check(cond, message) {
	if (!cond)
		throw new Failure(message);
}

const alertText = (page) => page.locator('#alert').innerText().then((t) => t.trim());

/** Password first: the answer is a challenge, and the form asks PAM's question. */
async function password(page) {
	await page.locator('input[name=username]').fill(USER);
	await page.locator('input[name=password]').fill(PASSWORD);
	const [res] = await Promise.all([
		page.waitForResponse((r) => r.url().endsWith('/api/v1/login')),
		page.getByRole('button', { name: 'Sign in' }).click(),
	]);
	check(res.status() === 401, `the password answered ${res.status()}, not a challenge`);
	await page.waitForSelector('#challenge-field:not([hidden])');
	const label = await page.locator('#answer-label').innerText();
	check(label.includes(PROMPT), `the code's label is "${label}", not PAM's question`);
	check(await page.locator('#answer').getAttribute('type') === 'password', 'the code is shown as it is typed');
	check(await page.locator('#answer').evaluate((e) => e === document.activeElement), 'the code field has no focus');
}

async function answer(page, code) {
	await page.locator('#answer').fill(code);
	const [res] = await Promise.all([
		page.waitForResponse((r) => r.url().endsWith('/api/v1/login')),
		page.keyboard.press('Enter'),
	]);
	return res;
}

async function main() {
	const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'portico-chromium-'));
	const context = await chromium.launchPersistentContext(profile, {
		executablePath: CHROMIUM,
		headless: true,
		ignoreHTTPSErrors: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync'],
	});
	const page = context.pages()[0] || await context.newPage();
	try {
		await page.goto(`${URL_BASE}/`);
		await page.waitForSelector('#signin-section:not([hidden])');
		await password(page);
		console.log('ok: after the password the portal asks PAM\'s question, hidden, focused');
		let res = await answer(page, '000000');
		check(res.status() === 401, `a wrong code answered ${res.status()}`);
		await page.waitForFunction(() => document.querySelector('#alert').innerText.trim() !== '',
			null, { timeout: 10000 });
		const text = await alertText(page);
		check(/login failed/i.test(text), `a wrong code's refusal says "${text}"`);
		check(await page.locator('#challenge-field').isHidden(), 'the code field stayed after a refusal');
		console.log(`ok: a wrong code is refused ("${text}") and the sign-in starts over`);
		await password(page);
		res = await answer(page, CODE);
		check(res.status() === 200, `the right code answered ${res.status()}: ${await res.text()}`);
		await page.waitForSelector('#portal:not([hidden])');
		const cookie = (await context.cookies()).find((c) => c.name === 'portico_session');
		check(cookie && cookie.httpOnly, 'no session cookie after the code');
		console.log('ok: the right code signs in: the resources page, a session cookie');
	} catch (e) {
		console.log(`FAIL: ${e instanceof Failure ? e.message : e.stack}`);
		process.exitCode = 1;
	} finally {
		await context.close();
		fs.rmSync(profile, { recursive: true, force: true });
	}
}

await main();
