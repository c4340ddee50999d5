// The whole story, as two people live it: a newcomer registers, records a voice note on a
// phone-sized screen and sends it; the recipient, already looking at their inbox, sees it
// arrive and listens to it to the end.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BASE, api, useBrowser, newUser } from './lib.mjs';

const browser = useBrowser();

test('a newcomer records a note and sends it, and the recipient hears it', async () => {
  const bob = await newUser();
  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };

  // Bob waits with his inbox open.
  const bobs = await browser.newContext();
  const inbox = await bobs.newPage();
  await inbox.goto(`${BASE}/`);
  await inbox.getByLabel('Email').fill(bob.email);
  await inbox.getByLabel('Password').fill(bob.password);
  await inbox.getByRole('button', { name: 'Sign in' }).click();
  await inbox.getByRole('link', { name: 'Inbox' }).click();
  await inbox.getByRole('heading', { name: 'Inbox' }).waitFor();
  assert.equal(await inbox.title(), 'Inbox · Hark');

  // Ann has never seen Hark: she registers from the sign-in page, on her phone.
  const anns = await browser.newContext(phone);
  const page = await anns.newPage();
  await page.goto(`${BASE}/`);
  await page.getByRole('link', { name: 'Register' }).click();
  const email = `ann-${Date.now()}@example.com`;
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Register' }).click();
  await page.getByRole('heading', { name: 'Library' }).waitFor();

  await page.getByRole('link', { name: 'Upload' }).tap();
  await page.getByRole('button', { name: 'Record' }).tap();
  await page.waitForTimeout(2500);
  await page.getByRole('button', { name: 'Stop' }).tap();
  await page.getByLabel('Title').fill('At the door');
  await page.getByLabel('Recipients').fill(bob.email);
  await page.getByRole('button', { name: 'Upload', exact: true }).tap();
  await page.getByRole('link', { name: 'Open At the door' }).waitFor({ timeout: 60_000 });

  // It arrives in Bob's open inbox without a reload.
  const item = inbox.getByRole('listitem').filter({ hasText: 'At the door' });
  await item.waitFor({ timeout: 30_000 });
  assert.ok((await item.textContent()).includes(`From ${email}`));
  await item.getByText('New').waitFor();
  await inbox.waitForFunction(() => document.title === '(1) Inbox · Hark');

  // He plays it to the end: it is listened to, and the count goes.
  const audio = item.getByLabel('Play At the door');
  await audio.evaluate(async (element) => {
    element.muted = true;
    if (element.readyState < 1) {
      element.preload = 'metadata';
      element.load();
      await new Promise((done) => element.addEventListener('loadedmetadata', done, { once: true }));
    }
    element.playbackRate = 4;
    await element.play();
  });
  await inbox.waitForFunction(() => document.title === 'Inbox · Hark', null, { timeout: 30_000 });
  assert.equal(await item.getByText('New').isVisible(), false);
  const entries = await api(bob.token, 'GET', '/api/v1/inbox');
  assert.equal(entries.items.length, 1);
  assert.ok(entries.items[0].listened_at, 'the server knows he listened');
  await anns.close();
  await bobs.close();
});
