// Upload: several files at once with a progress bar each, dropped or chosen, sent to
// recipients with a title; and a note recorded from the microphone.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import {
  SPEECH_MP3, SPEECH_WAV, api, assertNoHorizontalScroll, checkA11y, useBrowser, newUser, screenshot,
  settled, signIn,
} from './lib.mjs';

const browser = useBrowser();

async function openUpload(user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, user);
  await page.getByRole('link', { name: 'Upload' }).click();
  await page.getByRole('heading', { name: 'Upload', level: 1 }).waitFor();
  return { context, page };
}

/** The id of the note an upload's entry links to, once it has one. */
async function uploadedId(item) {
  const link = item.getByRole('link', { name: /^Open / });
  await link.waitFor({ timeout: 60_000 });
  return (await link.getAttribute('href')).split('/').pop();
}

test('several chosen files upload with a progress bar each, titled and sent to a recipient', async () => {
  const [ann, bob] = [await newUser(), await newUser()];
  const { context, page } = await openUpload(ann);
  await checkA11y(page, 'the upload page');
  await assertNoHorizontalScroll(page);

  await page.getByLabel('Audio files').setInputFiles([SPEECH_WAV, SPEECH_MP3]);
  const items = page.locator('#uploads > li');
  assert.equal(await items.count(), 2);
  await page.getByLabel('Title').fill('Delivery at the gate');
  await page.getByLabel('Recipients').fill(`${bob.email}`);
  await screenshot(page, 'upload');
  await page.getByRole('button', { name: 'Upload', exact: true }).click();

  const ids = [];
  for (const name of ['t1_pcm16_16k.wav', 't5_cbr64.mp3']) {
    const item = items.filter({ hasText: name });
    ids.push(await uploadedId(item));
    const bar = item.getByRole('progressbar', { name: `Upload of ${name}` });
    assert.equal(await bar.evaluate((p) => p.value), 1, 'the bar is full');
  }
  for (const id of ids) {
    const note = await api(ann.token, 'GET', `/api/v1/notes/${id}`);
    assert.equal(note.title, 'Delivery at the gate');
  }
  const inbox = await api(bob.token, 'GET', '/api/v1/inbox');
  assert.deepEqual(inbox.items.map((i) => i.note.id).sort(), [...ids].sort(), 'both reached the recipient');
  await context.close();
});

test('a dropped file uploads, and a refused one says why and can be removed', async () => {
  const ann = await newUser();
  const { context, page } = await openUpload(ann);
  const drop = async (name, type, bytes) => {
    const transfer = await page.evaluateHandle(({ name, type, bytes }) => {
      const data = new DataTransfer();
      data.items.add(new File([new Uint8Array(bytes)], name, { type }));
      return data;
    }, { name, type, bytes: [...bytes] });
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: transfer });
  };
  await drop('dropped.wav', 'audio/wav', await readFile(SPEECH_WAV));
  await drop('notes.txt', 'text/plain', Buffer.from('these are not sounds'));
  await page.getByRole('button', { name: 'Upload', exact: true }).click();

  const good = page.locator('#uploads > li').filter({ hasText: 'dropped.wav' });
  const id = await uploadedId(good);
  assert.equal((await api(ann.token, 'GET', `/api/v1/notes/${id}`)).name, 'dropped.wav');
  const bad = page.locator('#uploads > li').filter({ hasText: 'notes.txt' });
  await bad.getByText(/^Not uploaded: /).waitFor();
  assert.match(await bad.getByRole('status').textContent(), /audio/i, 'the reason names what was wrong');
  await bad.getByRole('button', { name: 'Remove notes.txt' }).click();
  assert.equal(await page.locator('#uploads > li').count(), 1);

  // An unknown recipient stores nothing.
  await page.getByLabel('Audio files').setInputFiles(SPEECH_MP3);
  await page.getByLabel('Recipients').fill('nobody-at-all@example.com');
  await page.getByRole('button', { name: 'Upload', exact: true }).click();
  const refused = page.locator('#uploads > li').filter({ hasText: 't5_cbr64.mp3' });
  await refused.getByText(/^Not uploaded: .*nobody-at-all@example.com/).waitFor();
  assert.equal((await api(ann.token, 'GET', '/api/v1/notes')).items.length, 1);
  await context.close();
});

test('Record and Stop make a WebM Opus note from the microphone', async () => {
  const ann = await newUser();
  const { context, page } = await openUpload(ann);
  const record = page.getByRole('button', { name: 'Record' });
  const stop = page.getByRole('button', { name: 'Stop' });
  assert.equal(await stop.isDisabled(), true);
  await record.click();
  await page.getByText('Recording…').waitFor();
  assert.equal(await record.isDisabled(), true);
  await page.waitForTimeout(2000);
  await stop.click();
  const item = page.locator('#uploads > li').filter({ hasText: /Recording .*\.webm/ });
  await item.waitFor();
  await item.getByLabel(/^Preview of Recording/).waitFor();
  await page.getByRole('button', { name: 'Upload', exact: true }).click();
  const id = await uploadedId(item);
  const note = await settled(ann.token, id);
  assert.equal(note.status, 'ready');
  assert.equal(note.format, 'webm');
  assert.equal(note.codec, 'opus');
  assert.ok(note.duration_seconds > 1.5 && note.duration_seconds < 4, `${note.duration_seconds} s recorded`);

  // Its page seeks by the waveform, though a recording tells the player no duration.
  await item.getByRole('link', { name: /^Open / }).click();
  await page.getByText('Ready.').waitFor();
  await page.waitForFunction(() => document.querySelector('#player').readyState >= 1);
  const waveform = page.getByRole('slider', { name: /Waveform/ });
  const box = await waveform.boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  const at = await page.locator('#player').evaluate((audio) => audio.currentTime);
  assert.ok(Math.abs(at - note.duration_seconds / 2) < 0.3, `the middle is ${note.duration_seconds / 2} s, not ${at} s`);
  await context.close();
});
