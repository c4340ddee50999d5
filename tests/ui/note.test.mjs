// The note page: player and waveform, live status, transcript words that seek and light up,
// the corrected transcript with its edits, Share, Send and Delete, and isolation.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  BASE, SPEECH_OGG_OPUS, SPEECH_WAV, api, assertNoHorizontalScroll, checkA11y, useBrowser, newUser,
  screenshot, settled, signIn, uploadFile,
} from './lib.mjs';

const browser = useBrowser();

async function openNote(user, id, options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  await signIn(page, user);
  const response = await page.goto(`${BASE}/notes/${id}`);
  return { context, page, response };
}

const currentTime = (page) => page.locator('#player').evaluate((audio) => audio.currentTime);

test('the status updates live while processing, and the transcript appears', async () => {
  const ann = await newUser();
  const note = await uploadFile(ann.token, SPEECH_OGG_OPUS, { title: 'Parcel' });
  const { context, page } = await openNote(ann, note.id);
  assert.equal(await page.title(), 'Parcel · Hark');
  // No reload: the page follows the note's events and steps.
  await page.getByRole('status').filter({ hasText: 'Ready.' }).waitFor({ timeout: 60_000 });
  const transcript = page.locator('#transcript');
  await transcript.locator('.word').first().waitFor();
  assert.match((await transcript.textContent()).toLowerCase(), /parcel.*front door/);
  for (const step of ['integrity', 'transcode', 'waveform', 'loudness', 'transcribe']) {
    assert.match(await page.getByRole('list', { name: 'Processing steps' }).textContent(), new RegExp(`${step} done`));
  }
  await checkA11y(page, 'the note page');
  await assertNoHorizontalScroll(page);
  await screenshot(page, 'note');
  await context.close();
});

test('the waveform and the words seek, and the word being said lights up', async () => {
  const ann = await newUser();
  const note = await uploadFile(ann.token, SPEECH_WAV);
  await settled(ann.token, note.id);
  const { context, page } = await openNote(ann, note.id);
  await page.waitForFunction(() => document.querySelector('#player').readyState >= 1);
  const duration = await page.locator('#player').evaluate((audio) => audio.duration);

  // A click on the waveform seeks to that point.
  const waveform = page.getByRole('slider', { name: /Waveform/ });
  const box = await waveform.boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  assert.ok(Math.abs((await currentTime(page)) - duration / 2) < 0.1, 'the middle of the waveform is the middle of the note');
  // And from the keyboard.
  await waveform.focus();
  await page.keyboard.press('Home');
  assert.equal(await currentTime(page), 0);
  await page.keyboard.press('ArrowRight');
  assert.ok(Math.abs((await currentTime(page)) - Math.min(5, duration)) < 0.01);
  await page.keyboard.press('Home');
  assert.match(await waveform.getAttribute('aria-valuetext'), /^0:00 of 0:0\d$/);

  // A word seeks to where it is said.
  const transcript = await api(ann.token, 'GET', `/api/v1/notes/${note.id}/transcript`);
  const words = transcript.segments.flatMap((s) => s.words);
  const target = words.find((w) => w.word.trim().toLowerCase().startsWith('building'));
  assert.ok(target, `"building" is in ${JSON.stringify(transcript.text)}`);
  const word = page.locator('#transcript .word', { hasText: /^building/i });
  await word.click();
  assert.ok(Math.abs((await currentTime(page)) - target.start) < 0.3, 'playback starts at the word');
  // And from the keyboard: one Tab stop, arrows between words, Enter plays from one.
  await page.locator('#player').evaluate((audio) => audio.pause());
  const first = page.locator('#transcript .word').first();
  assert.equal(await first.getAttribute('tabindex'), '0');
  await first.focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('Enter');
  assert.ok(Math.abs((await currentTime(page)) - words[1].start) < 0.3, 'Enter plays from the focused word');
  await page.locator('#player').evaluate((audio) => audio.pause());
  await page.locator('#player').evaluate((audio) => { audio.currentTime = 0.001; });
  await page.waitForFunction(() => document.querySelector('#player').seeking === false);

  // Played, the highlight follows the words.
  const seen = new Set();
  await page.locator('#player').evaluate((audio) => { audio.muted = true; return audio.play(); });
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && seen.size < 3) {
    const lit = await page.locator('#transcript .word.current').allTextContents();
    assert.ok(lit.length <= 1, 'one word at a time');
    if (lit.length === 1) seen.add(lit[0]);
    await page.waitForTimeout(50);
  }
  assert.ok(seen.size >= 3, `the highlight moved along the words: ${[...seen]}`);
  await context.close();
});

test('a corrected transcript marks its edits', async () => {
  const ann = await newUser();
  const dir = mkdtempSync(join(tmpdir(), 'hark-ui-'));
  const wav = join(dir, 'cats.wav');
  execFileSync('espeak-ng', ['-w', wav, 'She have two cats. The driver will call you when he arrives.']);
  const note = await uploadFile(ann.token, wav);
  await settled(ann.token, note.id);
  const { context, page } = await openNote(ann, note.id);
  await page.getByRole('button', { name: 'Make a corrected version' }).click();
  const corrected = page.locator('#corrected');
  await corrected.locator('ins').first().waitFor({ timeout: 90_000 });
  assert.deepEqual(await corrected.locator('del').allTextContents(), ['have']);
  assert.deepEqual(await corrected.locator('ins').allTextContents(), ['has']);
  assert.match(await corrected.textContent(), /1 edit marked/);
  await corrected.getByLabel('Corrected audio').waitFor();
  await screenshot(page, 'note-corrected');
  await context.close();
});

test('Share copies a signed link that plays without signing in, for the chosen time', async () => {
  const ann = await newUser();
  const note = await uploadFile(ann.token, SPEECH_WAV);
  const { context, page } = await openNote(ann, note.id, { permissions: ['clipboard-read', 'clipboard-write'] });
  await page.getByLabel('Link expires after').selectOption({ label: '1 hour' });
  await page.getByRole('button', { name: 'Share' }).click();
  await page.getByText(/^Link copied to the clipboard/).waitFor();
  const shown = await page.getByLabel('Shared link').inputValue();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, shown);
  const expires = Number(new URL(shown).searchParams.get('expires'));
  const left = expires - Date.now() / 1000;
  assert.ok(left > 3500 && left <= 3600, `the link lasts an hour (${left} s left)`);
  const audio = await fetch(shown);
  assert.equal(audio.status, 200, 'no token needed');
  assert.equal(Number(audio.headers.get('content-length')), note.size_bytes);
  await context.close();
});

test('Send delivers to a recipient, and Delete removes the note', async () => {
  const [ann, bob] = [await newUser(), await newUser()];
  const note = await uploadFile(ann.token, SPEECH_WAV);
  const { context, page } = await openNote(ann, note.id);
  const recipients = page.getByLabel('Recipients');
  await recipients.fill('nobody-at-all@example.com');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.getByText(/^Not sent: .*nobody-at-all@example.com/).waitFor();
  await recipients.fill(bob.email);
  await page.getByRole('button', { name: 'Send' }).click();
  await page.getByText('Sent to 1 recipient.').waitFor();
  const inbox = await api(bob.token, 'GET', '/api/v1/inbox');
  assert.deepEqual(inbox.items.map((i) => i.note.id), [note.id]);

  // Or to a channel: everyone in it but the sender.
  const cat = await newUser();
  const crew = `crew-${Date.now()}`;
  await api(ann.token, 'POST', '/api/v1/channels', { name: crew });
  await api(ann.token, 'PUT', `/api/v1/channels/${crew}/members/${encodeURIComponent(cat.email)}`);
  await page.reload();
  await page.getByLabel('Channel').selectOption(crew);
  await page.getByRole('button', { name: 'Send' }).click();
  await page.getByText('Sent to 1 recipient.').waitFor();
  const cats = await api(cat.token, 'GET', '/api/v1/inbox');
  assert.deepEqual(cats.items.map((i) => [i.note.id, i.channel]), [[note.id, crew]]);

  // A recipient sees the note but neither sends nor deletes it.
  const bobs = await openNote(bob, note.id);
  await bobs.page.getByRole('heading', { name: note.name }).waitFor();
  await bobs.page.getByRole('status').filter({ hasText: /Ready|Processing|Waiting/ }).waitFor();
  assert.equal(await bobs.page.getByRole('button', { name: 'Send' }).isVisible(), false);
  assert.equal(await bobs.page.getByRole('button', { name: 'Delete' }).isVisible(), false);
  await bobs.context.close();

  page.once('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.waitForURL(`${BASE}/`);
  await assert.rejects(api(ann.token, 'GET', `/api/v1/notes/${note.id}`), /404/);
  await context.close();
});

test("another user's note is a not-found page", async () => {
  const [ann, eve] = [await newUser(), await newUser()];
  const note = await uploadFile(ann.token, SPEECH_WAV);
  const { context, page, response } = await openNote(eve, note.id);
  assert.equal(response.status(), 404);
  await page.getByRole('heading', { name: 'Not found' }).waitFor();
  assert.equal(await page.locator('audio').count(), 0);
  await checkA11y(page, 'the not-found page');
  await context.close();
});
