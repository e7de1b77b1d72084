// api.js - the broker's user routes as the gateway's HTTPS front forwards
// them to browsers (docs/api.md), shared by the portal and the desktop page.
//
// The browser never sees the session token: the gateway keeps it in the
// HttpOnly cookie portico_session.  Every POST carries X-CSRF-Token equal to
// the cookie portico_csrf (readable by this page, set by the gateway on every
// page it serves when absent); the gateway refuses a POST without it.

const BASE = '/api/v1';

/** A refusal: the HTTP status, the broker's error code and its message,
 * which is what the user is shown. */
export class ApiError extends Error {
	constructor(status, code, message, data) {
		super(message);
		this.name = 'ApiError';
		this.status = status;
		this.code = code;
		this.data = data;
	}

	/** Not signed in (no cookie, or the token ended): show the sign-in form. */
	get unauthenticated() {
		return this.status === 401 && this.code === 'unauthenticated';
	}
}

/** The value of cookie NAME, '' when absent. */
export function cookie(name) {
	for (const part of document.cookie.split(';')) {
		const eq = part.indexOf('=');
		if (eq < 0 || part.slice(0, eq).trim() !== name)
			continue;
		try {
			return decodeURIComponent(part.slice(eq + 1).trim());
		} catch {
			return '';
		}
	}
	return '';
}

async function csrfToken() {
	let token = cookie('portico_csrf');
	if (!token) {
		// Cleared since the page was served: any page of the gateway sets it
		// again.
		try {
			await fetch('/', { cache: 'no-store', credentials: 'same-origin' });
		} catch {
			// the POST will say what is wrong
		}
		token = cookie('portico_csrf');
	}
	return token;
}

// Messages for refusals that come without one of their own.
const FALLBACK = {
	csrf: 'The page’s security token is missing or out of date: reload the page and try again.',
	unauthenticated: 'You are not signed in.',
};

/**
 * METHOD /api/v1PATH with BODY as JSON (POSTs always send one, {} at
 * least); resolves to the answer's JSON object, rejects with an ApiError.
 */
export async function call(method, path, body) {
	const headers = { Accept: 'application/json' };
	const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
	if (method !== 'GET' && method !== 'HEAD') {
		headers['X-CSRF-Token'] = await csrfToken();
		headers['Content-Type'] = 'application/json';
		init.body = JSON.stringify(body === undefined ? {} : body);
	}
	let res;
	try {
		res = await fetch(BASE + path, init);
	} catch {
		throw new ApiError(0, 'network',
			'The portal cannot reach the gateway: check your connection and try again.');
	}
	let data = null, text = '';
	try {
		text = await res.text();
		data = text ? JSON.parse(text) : null;
	} catch {
		data = null;
	}
	if (data === null || typeof data !== 'object' || Array.isArray(data))
		data = null;
	if (res.ok) {
		if (!data)
			throw new ApiError(res.status, 'bad_answer',
				'The gateway gave an answer the portal cannot read.');
		return data;
	}
	const code = data && typeof data.error === 'string' ? data.error : `http_${res.status}`;
	let message = data && typeof data.message === 'string' ? data.message.trim() : '';
	// A refusal before the request reached the broker (a URL too long) may
	// come as a line of plain text.
	if (!message && !data && /^text\/plain/.test(res.headers.get('Content-Type') || '') &&
	    text.length < 200)
		message = `The gateway refused the request (HTTP ${res.status}): ${text.trim()}`;
	if (!message)
		message = FALLBACK[code] ||
			`The gateway refused the request (HTTP ${res.status}${data && data.error ? `, ${data.error}` : ''}).`;
	throw new ApiError(res.status, code, message, data);
}

/** Path segment for a resource name (any text a pool name may hold). */
export function resourcePath(name) {
	return `/resources/${encodeURIComponent(name)}`;
}

/** sessionStorage key: the resource to open again once signed in. */
export const NEXT_KEY = 'portico.next';
