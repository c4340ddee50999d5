// The library: the caller's notes as a table, filtered by name, duration, status and the words
// said in them, sorted by clicking a column, paged by cursor, each downloadable.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import {
  BASE, SPEECH_MP3, SPEECH_OGG_OPUS, SPEECH_WAV, api, assertNoHorizontalScroll, checkA11y, useBrowser,
  newUser, screenshot, settled, signIn, uploadFile,
} from './lib.mjs';

const browser = useBrowser();
let ann;
const notes = {};
before(async () => {
  ann = await newUser();
  // 4.9 s, 4.5 s and 4.5 s of speech (texts t1, t2 and t5 of the corpus).
  notes.alpha = await uploadFile(ann.token, SPEECH_WAV, { name: 'alpha.wav' });
  notes.bravo = await uploadFile(ann.token, SPEECH_OGG_OPUS, { name: 'bravo.ogg', title: 'Front door' });
  notes.charlie = await uploadFile(ann.token, SPEECH_MP3, { name: 'charlie.mp3' });
  for (const note of Object.values(notes)) await settled(ann.token, note.id);
});

/** The names in the table's rows, top to bottom. */
async function rowNames(page) {
  await page.locator('#summary').filter({ hasNotText: 'Loading' }).waitFor();
  return page.locator('#notes tbody tr td:first-child > div > a').allTextContents();
}

async function filter(page, fields) {
  for (const [label, value] of Object.entries(fields)) {
    const field = page.getByLabel(label, { exact: true });
    if (label === 'Status') await field.selectOption(value);
    else await field.fill(value);
  }
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL((url) => Object.keys(fields).length === 0 || url.search.length > 0);
}

test('the library lists the notes and filters them by name, duration and status', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, ann);
  assert.equal(await page.title(), 'Library · Hark');
  assert.deepEqual(await rowNames(page), ['charlie.mp3', 'Front door', 'alpha.wav'], 'newest first');
  const first = page.locator('#notes tbody tr').first();
  for (const text of ['0:04', 'mp3', 'ready', 'You', 'Download']) {
    assert.ok((await first.textContent()).includes(text), `the row shows ${text}`);
  }

  await filter(page, { Name: 'alpha' });
  assert.deepEqual(await rowNames(page), ['alpha.wav']);
  await page.getByLabel('Name', { exact: true }).fill('');

  await filter(page, { 'Max duration': '4.7' });
  assert.deepEqual(await rowNames(page), ['charlie.mp3', 'Front door'], 'the 4.9 s note is longer');

  await filter(page, { 'Max duration': '', Status: 'failed' });
  assert.deepEqual(await rowNames(page), []);
  assert.equal(await page.locator('#summary').textContent(), 'No notes match these filters.');
  await filter(page, { Status: 'ready' });
  assert.equal((await rowNames(page)).length, 3);

  // The filters live in the address: a reload shows the same view.
  await page.reload();
  assert.equal(await page.getByLabel('Status').inputValue(), 'ready');
  assert.equal((await rowNames(page)).length, 3);

  await checkA11y(page, 'the library');
  await assertNoHorizontalScroll(page);
  await screenshot(page, 'library');
  await context.close();
});

test('a transcript search shows the matched segments, and a match opens the note at its time', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, ann);
  await filter(page, { Search: 'parcel' });
  assert.deepEqual(await rowNames(page), ['Front door']);
  const match = page.getByRole('list', { name: 'Matches in Front door' }).getByRole('link');
  assert.equal(await match.count(), 1);
  const text = await match.textContent();
  assert.match(text, /^0:0\d/, 'the match starts with its time');
  assert.match(text.toLowerCase(), /parcel/);
  await screenshot(page, 'library-search');

  const transcript = await api(ann.token, 'GET', `/api/v1/notes/${notes.bravo.id}/transcript`);
  const segment = transcript.segments.find((s) => s.text.toLowerCase().includes('parcel'));
  await match.click();
  await page.waitForURL((url) => url.pathname === `/notes/${notes.bravo.id}`);
  assert.equal(Number(new URL(page.url()).searchParams.get('t')), Number(segment.start.toFixed(2)));
  const player = page.locator('#player');
  await page.waitForFunction(() => document.querySelector('#player').readyState >= 1);
  const at = await player.evaluate((audio) => audio.currentTime);
  assert.ok(Math.abs(at - segment.start) < 0.05, `the player starts at ${segment.start} s, not ${at} s`);

  await page.goto(`${BASE}/?q=${encodeURIComponent('nothing like this was said')}`);
  assert.deepEqual(await rowNames(page), []);
  await context.close();
});

test('clicking a column sorts by it, and a second click reverses the order', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, ann);
  const byName = page.getByRole('button', { name: 'Name', exact: true });
  await byName.click();
  await page.waitForURL(/sort=name/);
  assert.deepEqual(await rowNames(page), ['alpha.wav', 'Front door', 'charlie.mp3']);
  assert.equal(await page.locator('th[data-sort="name"]').getAttribute('aria-sort'), 'ascending');
  await byName.click();
  await page.waitForURL(/sort=-name/);
  assert.deepEqual(await rowNames(page), ['charlie.mp3', 'Front door', 'alpha.wav']);
  assert.equal(await page.locator('th[data-sort="name"]').getAttribute('aria-sort'), 'descending');

  await page.getByRole('button', { name: 'Duration', exact: true }).click();
  await page.waitForURL(/sort=-duration/);
  assert.equal((await rowNames(page))[0], 'alpha.wav', 'longest first');
  await context.close();
});

test('pages follow the cursor, and every row downloads its audio', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, ann);
  await page.goto(`${BASE}/?limit=2`);
  assert.deepEqual(await rowNames(page), ['charlie.mp3', 'Front door']);
  assert.equal(await page.getByRole('button', { name: 'First page' }).isVisible(), false);
  await page.getByRole('button', { name: 'Next page' }).click();
  await page.waitForURL(/cursor=/);
  assert.deepEqual(await rowNames(page), ['alpha.wav']);
  assert.equal(await page.getByRole('button', { name: 'Next page' }).isVisible(), false);
  await page.getByRole('button', { name: 'First page' }).click();
  await page.waitForURL((url) => !url.search.includes('cursor'));
  assert.deepEqual(await rowNames(page), ['charlie.mp3', 'Front door']);

  const link = page.locator('#notes tbody tr').first().getByRole('link', { name: 'Download' });
  assert.equal(await link.getAttribute('download'), 'charlie.mp3');
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  assert.equal(download.suggestedFilename(), 'charlie.mp3');
  const path = await download.path();
  const { size } = await import('node:fs').then((fs) => fs.promises.stat(path));
  assert.equal(size, notes.charlie.size_bytes, 'the whole file, as stored');
  await context.close();
});
