// What every page shares: the JSON API with the session's CSRF token, live events, a small
// element builder and formatting. Each page's own module is loaded from its <main data-page>.

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? '';
/** The signed-in user's id. */
export const me = document.querySelector('meta[name="user-id"]')?.content ?? '';

/** A problem answer (RFC 9457) from the API. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `the server answered ${status}`);
    this.status = status;
    this.problem = problem ?? {};
  }
}

/**
 * A page whose session ended (signed out, or in again, from another tab) holds a CSRF token
 * the server no longer takes: reloading gets the current one, or the sign-in page.
 */
function staleSession(status, problem) {
  if (status === 403 && /X-CSRF-Token/.test(problem?.detail ?? '')) location.reload();
}

function signInAgain() {
  const here = location.pathname + location.search;
  location.assign(`/signin?next=${encodeURIComponent(here)}`);
}

/** Calls the API as the signed-in user; JSON in and out. */
export async function api(method, path, body) {
  const headers = {};
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf;
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) signInAgain();
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    staleSession(response.status, problem);
    throw new ApiError(response.status, problem);
  }
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') ?? '';
  return type.includes('json') ? response.json() : response.text();
}

/** Uploads a file as a note; `onProgress` gets the fraction sent. Resolves to the note. */
export function upload(file, name, query, onProgress) {
  const params = new URLSearchParams({ name, ...query });
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', `/api/v1/notes?${params}`);
    request.setRequestHeader('X-CSRF-Token', csrf);
    if (file.type) request.setRequestHeader('Content-Type', file.type);
    request.responseType = 'json';
    request.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    request.onload = () => {
      if (request.status === 401) signInAgain();
      if (request.status === 201) {
        resolve(request.response);
      } else {
        staleSession(request.status, request.response);
        reject(new ApiError(request.status, request.response));
      }
    };
    request.onerror = () => reject(new ApiError(0, { detail: 'the connection failed' }));
    request.send(file);
  });
}

/** Every event type, as the server names them. */
export const EVENT_TYPES = ['note.created', 'note.received', 'note.ready', 'note.failed', 'note.listened', 'note.deleted'];

/**
 * Follows the signed-in user's events over SSE, calling `onEvent({type, data})` for each. The
 * browser resumes a dropped stream by itself; one the server refused (a restart, an ended
 * session) is opened again after a pause, and `onEvent({type: 'reconnected'})` tells the page
 * to reload what it shows, since events may have been missed. Returns a function that stops.
 */
export function follow(onEvent) {
  let source = null;
  let pause = 1000;
  let stopped = false;
  const open = () => {
    source = new EventSource('/api/v1/events');
    source.addEventListener('open', () => { pause = 1000; });
    source.addEventListener('error', () => {
      if (stopped || source.readyState !== EventSource.CLOSED) return;
      setTimeout(() => {
        if (stopped) return;
        open();
        onEvent({ type: 'reconnected' });
      }, pause);
      pause = Math.min(pause * 2, 30_000);
    });
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (message) => {
        try {
          onEvent(JSON.parse(message.data));
        } catch (error) {
          console.warn('unreadable event', error);
        }
      });
    }
  };
  open();
  return () => {
    stopped = true;
    source.close();
  };
}

/** Emails or user ids from a comma-separated field. */
export function recipients(text) {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

/** Adds the caller's channels to a <select> as options. */
export async function fillChannels(select) {
  try {
    const channels = await api('GET', '/api/v1/channels');
    for (const c of channels.items) select.append(h('option', { value: c.name }, c.name));
  } catch {
    // Without channels the select offers None alone.
  }
}

/** An element with attributes (`on*` functions become listeners) and children. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(key, '');
    } else {
      element.setAttribute(key, value);
    }
  }
  element.append(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
  return element;
}

/** Seconds as `m:ss` (or `h:mm:ss`). */
export function clock(seconds) {
  const total = Math.max(0, Math.floor(seconds ?? 0));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

// One formatter for every date: making one per call costs more than the rest of a table row.
const dates = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** An RFC 3339 time in the reader's own words, in a <time>. */
export function when(iso) {
  return h('time', { datetime: iso }, dates.format(new Date(iso)));
}

/** A note's status as a badge. */
export function statusBadge(status) {
  return h('span', { class: `status ${status}` }, status);
}

/** Shows `text` in a status element (an error when `error`); the same text is not said again. */
export function say(element, text, error = false) {
  if (element.textContent !== text) element.textContent = text;
  element.classList.toggle('error', error);
}

/** Copies text to the clipboard; false where the browser refuses. */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

const main = document.querySelector('main[data-page]');
if (main) {
  import(`/ui/${main.dataset.page}.js`)
    .then((page) => page.start(main))
    .catch((error) => {
      console.error(error);
      main.prepend(h('p', { class: 'error', role: 'alert' }, `This page could not start: ${error.message}`));
    });
}
