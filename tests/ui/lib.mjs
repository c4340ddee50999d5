// What the browser tests share: the browser, the server under test, users and notes arranged
// over the JSON API, signing in through the page, accessibility checks, screenshots and the
// audio corpus. scripts/ui-test.sh starts the server and sets the environment read here:
//   HARK_URL          the server's base URL (required)
//   HARK_CORPUS       the audio corpus made by tests/corpus/make_corpus.sh
//   HARK_BIN          the `hark` binary the server runs (for CLI steps, e.g. an admin user)
//   HARK_SCREENSHOTS  when set, screenshot() writes docs/screenshots/*.png
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');

if (!process.env.HARK_URL) {
  throw new Error('HARK_URL is not set: run the browser tests with `bash scripts/ui-test.sh`');
}
/** The server under test, without a trailing slash. */
export const BASE = process.env.HARK_URL.replace(/\/+$/, '');

/** The machine's Chromium, headless, with a fake microphone that needs no permission prompt. */
export function launch(options = {}) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      // The machine's network is closed: without these Chromium keeps dialling out.
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // getUserMedia answers with a synthetic tone, so MediaRecorder has something to record.
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      // A test plays a note's audio from a script, as a click on the player would.
      '--autoplay-policy=no-user-gesture-required',
    ],
    ...options,
  });
}

/**
 * The browser of a test file: launched before its tests, closed after them. Call it at the
 * top level of the file.
 */
export function useBrowser() {
  let browser;
  before(async () => {
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
  });
  return {
    newContext: (options) => browser.newContext(options),
    newPage: (options) => browser.newPage(options),
  };
}

// ---- Arranging data over the JSON API -------------------------------------------------------

/**
 * A request to the JSON API. `body` is sent as JSON unless it is bytes; the answer is parsed
 * JSON (or text, or null when empty). A status other than 2xx throws with the problem body.
 */
export async function api(token, method, path, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (body instanceof Uint8Array) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`${BASE}${path}`, init);
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  const parsed = text && type.includes('json') ? JSON.parse(text) : text || null;
  if (!res.ok) {
    throw new Error(`${method} ${path}: ${res.status} ${typeof parsed === 'string' ? parsed : JSON.stringify(parsed)}`);
  }
  return parsed;
}

/** Registers a fresh user (open registration) and signs them in: `{email, password, id, token}`. */
export async function newUser() {
  const email = `ui-${randomBytes(6).toString('hex')}@example.com`;
  const password = randomBytes(12).toString('hex');
  const user = await api(null, 'POST', '/api/v1/users', { email, password });
  const { access_token: token } = await api(null, 'POST', '/token', { email, password });
  return { email, password, id: user.id, token };
}

/**
 * Uploads a file's bytes as a raw body to /api/v1/notes and answers the note. `query` adds
 * parameters (`{title, to, ...}`); `name` defaults to the file's own name.
 */
export async function uploadFile(token, path, query = {}) {
  const params = new URLSearchParams({ name: basename(path), ...query });
  const bytes = await readFile(path);
  return api(token, 'POST', `/api/v1/notes?${params}`, new Uint8Array(bytes));
}

/**
 * Calls `check` until it answers something truthy and answers that, for what happens in the
 * background (processing, deliveries); throws naming `what` after `timeout` ms.
 */
export async function eventually(what, check, { timeout = 30_000, every = 200 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`waited ${timeout} ms for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    }
    await new Promise((done) => setTimeout(done, every));
  }
}

// ---- The page -------------------------------------------------------------------------------

/** Signs `user` in through the sign-in page, and waits until it has moved on. */
export async function signIn(page, user) {
  await page.goto(`${BASE}/signin`);
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => !url.pathname.startsWith('/signin'));
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Runs axe on the page as it is now; throws listing every serious or critical violation. */
export async function checkA11y(page, label) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    try {
      await page.addScriptTag({ content: axeSource });
    } catch {
      // A Content-Security-Policy without inline scripts refuses the tag; evaluating the
      // source through the debugging protocol is not subject to it.
    }
    if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
      await page.evaluate(`${axeSource}\n;window.axe = axe;`);
    }
  }
  const { violations } = await page.evaluate(() => window.axe.run());
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length > 0) {
    const list = bad
      .map((v) => {
        const nodes = v.nodes.slice(0, 5).map((n) => `      ${n.target.join(' ')}`);
        if (v.nodes.length > 5) nodes.push(`      ... and ${v.nodes.length - 5} more`);
        return `  - [${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})\n${nodes.join('\n')}`;
      })
      .join('\n');
    throw new Error(`accessibility: ${bad.length} serious or critical violation(s) on ${label}:\n${list}`);
  }
}

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

// Viewport changes take effect at the next frame.
async function resize(page, size) {
  await page.setViewportSize(size);
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
}

/**
 * Saves full-page PNGs of the page at desktop and phone sizes as
 * docs/screenshots/<name>-desktop.png and <name>-phone.png, only when HARK_SCREENSHOTS is set
 * (so that an ordinary run leaves the tree alone). The viewport is put back afterwards.
 */
export async function screenshot(page, name) {
  if (!process.env.HARK_SCREENSHOTS) return;
  const dir = join(repoRoot, 'docs/screenshots');
  mkdirSync(dir, { recursive: true });
  const before = page.viewportSize();
  try {
    for (const [kind, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
      await resize(page, size);
      await page.screenshot({ path: join(dir, `${name}-${kind}.png`), fullPage: true, animations: 'disabled' });
    }
  } finally {
    if (before) await resize(page, before);
  }
}

/** Fails when the page scrolls sideways on a 390 px wide phone, naming what sticks out. */
export async function assertNoHorizontalScroll(page) {
  const before = page.viewportSize();
  let found;
  try {
    await resize(page, PHONE);
    found = await page.evaluate(() => {
      const root = document.scrollingElement;
      const width = root.clientWidth;
      const wide = [...document.querySelectorAll('body *')]
        .filter((el) => el.getBoundingClientRect().right > width + 0.5)
        .slice(0, 5)
        .map((el) => {
          const id = el.id ? `#${el.id}` : '';
          const cls = typeof el.className === 'string' && el.className.trim() ? `.${el.className.trim().split(/\s+/).join('.')}` : '';
          return `${el.tagName.toLowerCase()}${id}${cls} (right edge ${Math.round(el.getBoundingClientRect().right)} px)`;
        });
      return { scrollWidth: root.scrollWidth, clientWidth: width, wide };
    });
  } finally {
    if (before) await resize(page, before);
  }
  if (found.scrollWidth > found.clientWidth) {
    throw new Error(
      `the page scrolls sideways at 390 px: scrollWidth ${found.scrollWidth} > clientWidth ${found.clientWidth}` +
        (found.wide.length ? `; wider than the screen: ${found.wide.join(', ')}` : ''),
    );
  }
}

// ---- The audio corpus -----------------------------------------------------------------------

const corpus = process.env.HARK_CORPUS ?? '';

/** The path of a file of the corpus (see its manifest.tsv); throws when it is not there. */
export function corpusFile(name) {
  if (!corpus) throw new Error('HARK_CORPUS is not set: run the browser tests with `bash scripts/ui-test.sh`');
  const path = join(corpus, name);
  if (!existsSync(path)) throw new Error(`no ${name} in the corpus at ${corpus}`);
  return path;
}

/** The sentence a corpus file speaks, by its text id (`t1` ... `t6`, from texts.tsv). */
export function corpusText(id) {
  const line = readFileSync(corpusFile('texts.tsv'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${id}\t`));
  if (!line) throw new Error(`no text ${id} in the corpus's texts.tsv`);
  return line.slice(id.length + 1);
}

// Short speech (4 to 5 s each), for uploads that get a transcript. Each speaks one sentence
// of texts.tsv: the text id starts its name.
/** WAV, 16-bit PCM, 16 kHz mono: "Hello, this is your driver. ..." (t1). */
export const SPEECH_WAV = join(corpus, 't1_pcm16_16k.wav');
/** Ogg Opus, 24 kbps, 48 kHz mono: "Please leave the parcel at the front door ..." (t2). */
export const SPEECH_OGG_OPUS = join(corpus, 't2_opus24.ogg');
/** WebM Opus, as a browser's MediaRecorder makes: "Hello, this is your driver. ..." (t1). */
export const SPEECH_WEBM = join(corpus, 't1_opus.webm');
/** MP3, 64 kbps CBR, 44.1 kHz mono: "Can you call me back when you have a moment? ..." (t5). */
export const SPEECH_MP3 = join(corpus, 't5_cbr64.mp3');

// ---- Waiting for the pipeline ---------------------------------------------------------------

/**
 * Waits until a note's processing has settled (ready or failed, no step queued or running) and
 * answers the note. Transcription runs the real model, so this can take a few seconds.
 */
export async function settled(token, id, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [note, jobs] = await Promise.all([
      api(token, 'GET', `/api/v1/notes/${id}`),
      api(token, 'GET', `/api/v1/notes/${id}/jobs`),
    ]);
    const busy = jobs.items.some((j) => j.status === 'queued' || j.status === 'running');
    if (!busy && (note.status === 'ready' || note.status === 'failed')) return note;
    if (Date.now() > deadline) throw new Error(`note ${id} still processing: ${JSON.stringify(jobs.items)}`);
    await new Promise((done) => setTimeout(done, 250));
  }
}
