// portal.js - the web portal: sign in, the user's desktops and
// applications, their running sessions, sign out.
//
// Stable hooks (tests and scripts rely on them): the sign-in inputs are
// named username and password; each resource is a button with
// data-resource="NAME"; each running session an element with
// data-session="ID"; refusals are shown in #alert (role="alert").
// Everything the broker sends is put in the page as text, never as HTML.

import { ApiError, NEXT_KEY, call, resourcePath } from './api.js';

const $ = (id) => document.getElementById(id);
const USER_KEY = 'portico.user';

let resources = [];    // the last GET /resources
let challenge = null;  // the PAM conversation under way: {challenge}
let busy = false;      // a sign-in in flight
let expiryTimer = 0;
let rdpShown = null;   // the RDP resource the panel is about

function el(tag, className, text) {
	const e = document.createElement(tag);
	if (className)
		e.className = className;
	if (text !== undefined)
		e.textContent = text;
	return e;
}

function showAlert(message) {
	$('alert').textContent = message || '';
}

function status(message) {
	$('status').textContent = message || '';
}

const KINDS = { desktop: 'Desktop', app: 'Application' };
const PROTOCOLS = {
	vnc: 'VNC · opens in this browser',
	rdp: 'RDP · opens in a Remote Desktop client',
};
const STATES = {
	starting: 'starting',
	ready: 'ready',
	active: 'connected',
	disconnected: 'disconnected',
	ended: 'ended',
};

function text(v, fallback) {
	return typeof v === 'string' && v ? v : fallback;
}

// ---- signed in or not ----------------------------------------------------

function showSignIn(message) {
	clearTimeout(expiryTimer);
	resources = [];
	sessionStorage.removeItem(USER_KEY);
	$('portal').hidden = true;
	$('who').hidden = true;
	$('rdp').hidden = true;
	$('resources').replaceChildren();
	$('sessions').replaceChildren();
	resetChallenge();
	$('signin-section').hidden = false;
	status(message || 'Sign in with your user name and password.');
	document.title = 'Sign in · Portico';
	$('username').focus();
}

function showPortal(user) {
	$('signin-section').hidden = true;
	$('portal').hidden = false;
	$('who').hidden = false;
	$('user-name').textContent = user ? `Signed in as ${user}` : 'Signed in';
	document.title = 'Portico';
}

/** A call's refusal: the sign-in form when the sign-in ended, else the
 * broker's message in the alert. */
function refused(e) {
	if (e instanceof ApiError && e.unauthenticated) {
		showSignIn('Your sign-in has ended: sign in again.');
		return;
	}
	status('');
	showAlert(e instanceof ApiError ? e.message : `Something went wrong in the portal: ${e}`);
}

// ---- sign in ---------------------------------------------------------------

function resetChallenge() {
	challenge = null;
	$('challenge-field').hidden = true;
	$('challenge-cancel').hidden = true;
	$('answer').value = '';
	$('answer').required = false;
	$('username').disabled = false;
	$('password').disabled = false;
	$('password').value = '';
}

function askChallenge(answer) {
	challenge = { challenge: answer.challenge };
	$('answer-label').textContent = text(answer.prompt, 'Answer').trim().replace(/:$/, '');
	$('answer').type = answer.echo ? 'text' : 'password';
	$('answer').value = '';
	$('answer').required = true;
	$('challenge-field').hidden = false;
	$('challenge-cancel').hidden = false;
	$('username').disabled = true;
	$('password').disabled = true;
	status(`${$('answer-label').textContent}: your sign-in needs one more answer.`);
	$('answer').focus();
}

async function signIn(event) {
	event.preventDefault();
	if (busy)
		return;
	const username = $('username').value.trim();
	const password = $('password').value;
	let body;
	if (challenge) {
		body = { challenge: challenge.challenge, answer: $('answer').value };
	} else {
		if (!username || !password) {
			showAlert(username ? 'Enter your password.' : 'Enter your user name.');
			(username ? $('password') : $('username')).focus();
			return;
		}
		body = { username, password };
	}
	busy = true;
	$('signin-button').disabled = true;
	showAlert('');
	status('Signing in…');
	try {
		const answer = await call('POST', '/login', body);
		const user = text(answer.user, username);
		sessionStorage.setItem(USER_KEY, user);
		resetChallenge();
		if (Number.isFinite(answer.expires_in_ms) && answer.expires_in_ms > 0 &&
		    answer.expires_in_ms < 2 ** 31) {
			clearTimeout(expiryTimer);
			expiryTimer = setTimeout(refresh, answer.expires_in_ms + 1000);
		}
		const next = sessionStorage.getItem(NEXT_KEY);
		sessionStorage.removeItem(NEXT_KEY);
		await refresh();
		if (next && resources.some((r) => r.name === next && r.protocol === 'vnc')) {
			location.assign(`desktop.html#${encodeURIComponent(next)}`);
			return;
		}
		status(`Signed in as ${user}.`);
		$('resources-title').focus();
	} catch (e) {
		if (e instanceof ApiError && e.status === 401 && e.code === 'challenge') {
			showAlert('');
			askChallenge(e.data);
		} else {
			// A failed answer to a challenge starts the conversation over.
			const wasChallenge = challenge !== null;
			resetChallenge();
			status('');
			showAlert(e instanceof ApiError ? e.message : String(e));
			if (wasChallenge)
				$('username').focus();
			else
				$('password').focus();
		}
	} finally {
		busy = false;
		$('signin-button').disabled = false;
	}
}

async function signOut() {
	$('signout').disabled = true;
	showAlert('');
	try {
		await call('POST', '/logout', {});
		showSignIn('You have signed out.');
	} catch (e) {
		if (e instanceof ApiError && e.unauthenticated)
			showSignIn('You have signed out.');
		else
			refused(e);
	} finally {
		$('signout').disabled = false;
	}
}

// ---- resources and sessions -------------------------------------------------

function renderResources() {
	const list = $('resources');
	list.replaceChildren();
	for (const r of resources) {
		const li = el('li', 'resource');
		const button = el('button', `launch ${r.protocol === 'vnc' ? 'vnc' : 'rdp'}`);
		button.type = 'button';
		button.dataset.resource = r.name;
		// The separators are for screen readers, which read the button's
		// text as one name.
		button.append(el('span', 'name', r.name), el('span', 'visually-hidden', ', '));
		button.append(el('span', 'meta',
			`${KINDS[r.kind] || text(r.kind, 'Resource')} · ${PROTOCOLS[r.protocol] || text(r.protocol, '?')}`));
		if (r.session && typeof r.session === 'object')
			button.append(el('span', 'visually-hidden', ', '),
				el('span', 'badge', `session ${STATES[r.session.state] || text(r.session.state, 'running')}`));
		button.addEventListener('click', () => launch(r, button));
		li.append(button);
		list.append(li);
	}
	$('no-resources').hidden = resources.length > 0;
}

function renderSessions(sessions) {
	const list = $('sessions');
	list.replaceChildren();
	for (const s of sessions) {
		const id = s.id;
		const pool = text(s.pool, '?');
		const li = el('li', 'session');
		li.dataset.session = String(id);
		const info = el('div', 'info');
		info.append(el('span', 'name', pool), el('span', 'visually-hidden', ', '));
		info.append(el('span', `state state-${text(s.state, 'unknown')}`, STATES[s.state] || text(s.state, 'unknown')));
		info.append(el('span', 'visually-hidden', ', '));
		if (Number.isFinite(s.created_ms)) {
			const when = new Date(s.created_ms);
			const t = el('time', 'started', `started ${when.toLocaleString()}`);
			t.dateTime = when.toISOString();
			info.append(t);
		}
		li.append(info);
		const actions = el('div', 'actions');
		const r = resources.find((x) => x.name === s.pool);
		if (r && s.state !== 'ended') {
			const again = el('button', 'reconnect', 'Reconnect');
			again.type = 'button';
			again.setAttribute('aria-label', `Reconnect to ${pool}`);
			again.addEventListener('click', () => launch(r, again));
			actions.append(again);
		}
		const off = el('button', 'logoff', 'Log off');
		off.type = 'button';
		off.setAttribute('aria-label', `Log off your session in ${pool}`);
		off.addEventListener('click', () => logOff(id, pool, off));
		actions.append(off);
		li.append(actions);
		list.append(li);
	}
	$('no-sessions').hidden = sessions.length > 0;
}

function validResources(answer) {
	const list = Array.isArray(answer.resources) ? answer.resources : [];
	return list.filter((r) => r && typeof r === 'object' && typeof r.name === 'string' && r.name);
}

function validSessions(answer) {
	const list = Array.isArray(answer.sessions) ? answer.sessions : [];
	return list.filter((s) => s && typeof s === 'object' && Number.isSafeInteger(s.id));
}

/** Reads resources and sessions again; false (and the sign-in form) when
 * not signed in. */
async function refresh() {
	try {
		const [res, ses] = await Promise.all([call('GET', '/resources'), call('GET', '/sessions')]);
		resources = validResources(res);
		const sessions = validSessions(ses);
		let user = sessionStorage.getItem(USER_KEY);
		if (!user && sessions.length && typeof sessions[0].user === 'string')
			user = sessions[0].user;
		showPortal(user);
		renderResources();
		renderSessions(sessions);
		return true;
	} catch (e) {
		if (e instanceof ApiError && e.unauthenticated)
			showSignIn();
		else
			refused(e);
		return false;
	}
}

// ---- launch, reconnect, log off ---------------------------------------------

function launch(r, button) {
	showAlert('');
	if (r.protocol === 'vnc') {
		status(`Opening ${r.name}…`);
		location.assign(`desktop.html#${encodeURIComponent(r.name)}`);
		return;
	}
	offerRdp(r, button);
}

/** One POSIX shell word. */
function shellWord(s) {
	return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The xfreerdp command equivalent to the .rdp file, from a launch answer:
 * through the RD Gateway on the HTTPS port when the answer names one (the
 * ticket is its access token, the session's backend the one target it
 * lets through), else to the gateway's RDP port with the ticket as the
 * load-balance cookie (as `portico connect --print` writes it). */
function xfreerdpCommand(answer) {
	const words = ['xfreerdp'];
	if (typeof answer.rd_gateway === 'string' && answer.rd_gateway &&
	    typeof answer.target === 'string' && answer.target)
		words.push(`/v:${answer.target}`, `/g:${answer.rd_gateway}`, `/gat:${answer.ticket}`);
	else
		words.push(`/v:${answer.gateway}`, `/load-balance-info:Cookie: msts=${answer.ticket}`);
	if (answer.session && typeof answer.session.user === 'string' && answer.session.user)
		words.push(`/u:${answer.session.user}`);
	words.push('/cert:tofu');
	if (typeof answer.command === 'string' && answer.command)
		words.push(answer.command.startsWith('||') ? `/app:${answer.command}` : `/shell:${answer.command}`);
	return words.map(shellWord).join(' ');
}

async function offerRdp(r, button) {
	button.disabled = true;
	status(`Preparing ${r.name}…`);
	try {
		const answer = await call('POST', `${resourcePath(r.name)}/launch`, {});
		if (typeof answer.ticket !== 'string' || !answer.ticket || typeof answer.gateway !== 'string')
			throw new ApiError(200, 'bad_answer', `The broker's answer for ${r.name} has no ticket.`);
		const panel = $('rdp');
		$('rdp-title').textContent = `Open ${r.name} in a Remote Desktop client`;
		const file = $('rdp-file');
		file.href = `/api/v1${resourcePath(r.name)}/launch.rdp`;
		file.download = `${r.name.replace(/[^A-Za-z0-9._-]+/g, '_') || 'portico'}.rdp`;
		file.textContent = `Download ${r.name}.rdp`;
		$('rdp-command').textContent = xfreerdpCommand(answer);
		const secs = Math.round((Number(answer.expires_in_ms) || 60000) / 1000);
		$('rdp-expiry').textContent =
			`The command works once, within ${secs} seconds (until ${new Date(Date.now() + secs * 1000).toLocaleTimeString()}): ` +
			'take a new one after that.';
		rdpShown = r;
		panel.hidden = false;
		status(answer.reconnect ? `Your running session in ${r.name} is ready.` : `${r.name} is ready.`);
		panel.focus();
		refreshSessionsQuietly();
	} catch (e) {
		refused(e);
	} finally {
		button.disabled = false;
	}
}

async function refreshSessionsQuietly() {
	try {
		renderSessions(validSessions(await call('GET', '/sessions')));
	} catch (e) {
		if (e instanceof ApiError && e.unauthenticated)
			showSignIn('Your sign-in has ended: sign in again.');
	}
}

async function logOff(id, pool, button) {
	if (!window.confirm(`Log off your session in ${pool}? Programs still open in it are closed and unsaved work is lost.`))
		return;
	button.disabled = true;
	showAlert('');
	status(`Logging off your session in ${pool}…`);
	try {
		await call('POST', `/sessions/${encodeURIComponent(String(id))}/logoff`, {});
		await refresh();
		status(`Your session in ${pool} is logged off.`);
		$('sessions-title').focus();
	} catch (e) {
		refused(e);
		button.disabled = false;
	}
}

async function copyCommand() {
	const command = $('rdp-command').textContent;
	try {
		await navigator.clipboard.writeText(command);
		status('The command is on your clipboard.');
	} catch {
		const range = document.createRange();
		range.selectNodeContents($('rdp-command'));
		const sel = window.getSelection();
		sel.removeAllRanges();
		sel.addRange(range);
		status('The command is selected: copy it with Ctrl+C.');
	}
}

// ---- start -------------------------------------------------------------------

function init() {
	$('signin').addEventListener('submit', signIn);
	$('challenge-cancel').addEventListener('click', () => {
		resetChallenge();
		showAlert('');
		status('Sign in with your user name and password.');
		$('username').focus();
	});
	$('signout').addEventListener('click', signOut);
	$('refresh').addEventListener('click', async () => {
		showAlert('');
		if (await refresh())
			status('Up to date.');
	});
	$('rdp-copy').addEventListener('click', copyCommand);
	$('rdp-again').addEventListener('click', () => {
		if (rdpShown)
			offerRdp(rdpShown, $('rdp-again'));
	});
	$('rdp-close').addEventListener('click', () => {
		$('rdp').hidden = true;
		$('resources-title').focus();
	});
	document.addEventListener('visibilitychange', () => {
		if (document.visibilityState === 'visible' && !$('portal').hidden)
			refresh();
	});
	refresh().then((signedIn) => {
		if (signedIn)
			status('');
	});
}

init();
