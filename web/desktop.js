// desktop.js - a VNC desktop or application in the browser: desktop.html#NAME.
//
// Launches pool NAME (the broker answers the user's running session again
// when there is one, so a reload reconnects), then opens noVNC (Debian's
// novnc 1.3.0, served by the gateway under /novnc/) on the gateway's
// wss://HOST/ws/vnc?ticket=TICKET: RFB 3.8 with security type None, the
// gateway having done the backend's own authentication.
//
// Stable hooks for tests: <body data-state> is loading, launching,
// connecting, connected, disconnected or failed; <body data-session> the
// session's id once launched; #alert (role="alert") says why it failed.

import RFB from '/novnc/core/rfb.js';
import { ApiError, NEXT_KEY, call, resourcePath } from './api.js';

const $ = (id) => document.getElementById(id);
const view = $('screen');

// The broker takes 200 to 8192 pixels each way (docs/api.md).
const MIN_SIZE = 200;
const MAX_SIZE = 8192;
// "starting" and "host_busy" ask to try again; this long at most (the
// broker's own start_timeout is 90 s).
const RETRY_FOR_MS = 90000;
// The gateway's close code when the broker ended the connection (an
// administrator's disconnect or logoff, a timeout): the reason says which.
const GW_CLOSE_ENDED = 4000;

let name = '';
let rfb = null;
let leaving = false;   // the user pressed Disconnect: no error to show
let closeInfo = null;  // the WebSocket's close code and reason
let failure = null;    // what went wrong, known before noVNC's disconnect

function setState(state) {
	document.body.dataset.state = state;
	$('disconnect').disabled = state !== 'connected' && state !== 'connecting';
	$('clipboard-send').disabled = state !== 'connected';
}

function status(message) {
	$('status').textContent = message || '';
}

/** Shows MESSAGE in the alert, with "Connect again" when CANRETRY. */
function fail(message, canRetry = true, state = 'failed') {
	setState(state);
	status('');
	$('alert').textContent = message;
	$('problem-actions').hidden = false;
	$('retry').hidden = !canRetry;
	(canRetry ? $('retry') : $('problem-actions').querySelector('a')).focus();
}

function clearProblem() {
	$('alert').textContent = '';
	$('problem-actions').hidden = true;
}

function clamp(v) {
	return Math.min(MAX_SIZE, Math.max(MIN_SIZE, Math.round(v)));
}

/** The size the session should have: what the page gives the screen. */
function geometry() {
	const box = view.getBoundingClientRect();
	const w = box.width || window.innerWidth;
	const h = box.height || window.innerHeight;
	return `${clamp(w)}x${clamp(h)}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function launch() {
	const until = Date.now() + RETRY_FOR_MS;
	for (;;) {
		try {
			return await call('POST', `${resourcePath(name)}/launch`, { geometry: geometry() });
		} catch (e) {
			const again = e instanceof ApiError && e.status === 503 &&
				(e.code === 'starting' || e.code === 'host_busy');
			if (!again || Date.now() > until)
				throw e;
			status(`${e.message} (trying again)`);
			await sleep(2000);
		}
	}
}

async function start() {
	clearProblem();
	closeInfo = null;
	failure = null;
	setState('launching');
	status(`Starting ${name}…`);
	let answer;
	try {
		answer = await launch();
	} catch (e) {
		if (e instanceof ApiError && e.unauthenticated) {
			// Sign in first, then the portal brings the user back here.
			sessionStorage.setItem(NEXT_KEY, name);
			location.replace('./');
			return;
		}
		fail(e instanceof ApiError ? e.message : `Cannot start ${name}: ${e}`,
			!(e instanceof ApiError) || e.status >= 500 || e.status === 0);
		return;
	}
	if (answer.protocol !== 'vnc') {
		fail(`${name} is a Remote Desktop (RDP) resource: open it from the portal with a Remote Desktop client.`, false);
		return;
	}
	if (typeof answer.ticket !== 'string' || !answer.ticket) {
		fail(`The broker's answer for ${name} has no ticket.`);
		return;
	}
	if (answer.session && Number.isSafeInteger(answer.session.id))
		document.body.dataset.session = String(answer.session.id);
	status(answer.reconnect ? `Reconnecting to your session in ${name}…` : `Connecting to ${name}…`);
	connect(answer.ticket);
}

function connect(ticket) {
	const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
	const url = `${scheme}://${location.host}/ws/vnc?ticket=${encodeURIComponent(ticket)}`;
	let ws;
	try {
		ws = new WebSocket(url);
	} catch (e) {
		fail(`Cannot open a connection to the gateway: ${e.message}`);
		return;
	}
	ws.binaryType = 'arraybuffer';
	// Registered before noVNC's own handler, so the gateway's reason (a
	// refused ticket: code 1008) is known when noVNC reports the disconnect.
	ws.addEventListener('close', (e) => {
		closeInfo = { code: e.code, reason: e.reason };
	});
	// The gateway's own word beside the desktop: a text frame (noVNC reads
	// binary frames only and ignores it).
	ws.addEventListener('message', (e) => {
		if (typeof e.data === 'string')
			onGatewayText(e.data);
	});
	setState('connecting');
	try {
		rfb = new RFB(view, ws, { shared: true });
	} catch (e) {
		ws.close();
		fail(`The desktop viewer could not start: ${e.message}`);
		return;
	}
	rfb.resizeSession = true;
	rfb.scaleViewport = false;
	rfb.clipViewport = false;
	rfb.showDotCursor = true;
	rfb.background = '#1b1d21';
	rfb.addEventListener('connect', onConnect);
	rfb.addEventListener('disconnect', onDisconnect);
	rfb.addEventListener('securityfailure', onSecurityFailure);
	rfb.addEventListener('credentialsrequired', onCredentialsRequired);
	rfb.addEventListener('clipboard', onClipboard);
	rfb.addEventListener('desktopname', onDesktopName);
}

function onConnect() {
	setState('connected');
	status(`Connected to ${name}. Press F8 to reach the toolbar.`);
	rfb.focus();
}

/** A text frame from the gateway: {"portico":"message","text":...}, an
 * administrator's message to this session. */
function onGatewayText(data) {
	let m;
	try {
		m = JSON.parse(data);
	} catch (e) {
		return;
	}
	if (!m || m.portico !== 'message' || typeof m.text !== 'string')
		return;
	$('notice-text').textContent = m.text;
	$('notice').hidden = false;
}

function closeMessage() {
	if (!closeInfo || closeInfo.code === 1000 || closeInfo.code === 1005)
		return '';
	if (closeInfo.reason)
		return `The gateway closed the connection: ${closeInfo.reason}`;
	if (closeInfo.code === 1006)
		return 'The connection to the gateway was cut.';
	return `The gateway closed the connection (code ${closeInfo.code}).`;
}

function onDisconnect(e) {
	const wasConnected = document.body.dataset.state === 'connected';
	rfb = null;
	if (leaving)
		return;
	const why = closeMessage();
	if (failure)
		fail(failure.message, failure.canRetry);
	else if (why && closeInfo.code === GW_CLOSE_ENDED)
		fail(why, true, 'disconnected');
	else if (why)
		fail(why);
	else if (!e.detail.clean)
		fail(wasConnected ? `The connection to ${name} was lost.` : `Could not connect to ${name}.`);
	else
		fail(`${name} ended the connection.`, true, 'disconnected');
}

function onSecurityFailure(e) {
	const reason = e.detail && e.detail.reason ? `: ${e.detail.reason}` : '';
	// The browser's RFB peer is the gateway (security None): a refusal
	// here is the gateway's, e.g. a ticket it did not take.
	failure = { message: `The gateway refused the connection${reason}`, canRetry: true };
}

function onCredentialsRequired() {
	// The gateway answers the backend's authentication itself: a desktop
	// that asks here is misconfigured, and the user has nothing to give.
	failure = {
		message: `${name} asked for a password the portal does not have: tell your administrator.`,
		canRetry: false,
	};
	rfb.disconnect();
}

function onClipboard(e) {
	$('clipboard-text').value = e.detail.text;
	if (!$('clipboard').hidden)
		status('Text copied on the desktop is in the clipboard panel.');
}

function onDesktopName(e) {
	const title = e.detail.name ? `${name}: ${e.detail.name}` : name;
	$('title').textContent = title;
	document.title = `${title} · Portico`;
}

function toggleClipboard(show) {
	const panel = $('clipboard');
	panel.hidden = !show;
	$('clipboard-toggle').setAttribute('aria-expanded', String(show));
	if (show)
		$('clipboard-text').focus();
	else if (rfb)
		rfb.focus();
}

function sendClipboard() {
	if (!rfb)
		return;
	rfb.clipboardPasteFrom($('clipboard-text').value);
	status('Sent to the desktop’s clipboard.');
	rfb.focus();
}

function disconnect() {
	leaving = true;
	if (rfb)
		rfb.disconnect();
	location.assign('./');
}

function init() {
	try {
		name = decodeURIComponent(location.hash.slice(1));
	} catch {
		name = '';
	}
	$('disconnect').addEventListener('click', disconnect);
	$('clipboard-toggle').addEventListener('click', () => toggleClipboard($('clipboard').hidden));
	$('clipboard-close').addEventListener('click', () => toggleClipboard(false));
	$('clipboard-send').addEventListener('click', sendClipboard);
	$('retry').addEventListener('click', start);
	$('notice-close').addEventListener('click', () => {
		$('notice').hidden = true;
	});
	// The remote desktop takes every key while the canvas has the focus;
	// F8 (as in TigerVNC's viewer) comes back to the toolbar.  The capture
	// phase sees it before noVNC's own handler on the canvas.
	for (const type of ['keydown', 'keyup']) {
		window.addEventListener(type, (e) => {
			if (e.key !== 'F8' || e.ctrlKey || e.altKey || e.metaKey || !view.contains(e.target))
				return;
			e.preventDefault();
			e.stopPropagation();
			if (type === 'keydown')
				$('clipboard-toggle').focus();
		}, true);
	}
	// Another resource in the same tab (the portal's links change the hash).
	window.addEventListener('hashchange', () => location.reload());
	if (!name) {
		fail('No desktop was named: open one from the portal.', false);
		return;
	}
	$('title').textContent = name;
	document.title = `${name} · Portico`;
	start();
}

init();
