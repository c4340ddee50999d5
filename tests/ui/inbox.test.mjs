// The inbox: notes sent to someone arrive on their open page over live events, unlistened
// ones are marked and counted in the title, and playing one to its end marks it listened.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BASE, SPEECH_OGG_OPUS, SPEECH_WAV, api, assertNoHorizontalScroll, checkA11y, eventually, useBrowser, newUser,
  screenshot, signIn, uploadFile,
} from './lib.mjs';

const browser = useBrowser();

/** Waits until the document's title is `title`, saying what it was instead. */
async function titleBecomes(page, title) {
  try {
    await page.waitForFunction((t) => document.title === t, title, { timeout: 15_000 });
  } catch (error) {
    throw new Error(`the title stayed ${JSON.stringify(await page.title())}, not ${JSON.stringify(title)}: ${error.message}`);
  }
}

/** The inbox entry of the note titled `title`. */
function entry(page, title) {
  return page.getByRole('list', { name: 'Received notes' }).getByRole('listitem')
    .filter({ has: page.getByRole('link', { name: title, exact: true }) });
}

/** A signed-in user's own browser context and page, on `path`. */
async function signedIn(user, path) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, user);
  if (path) await page.goto(`${BASE}${path}`);
  return { context, page };
}

/** Opens the inbox and waits until it has loaded and follows live events. */
async function openInbox(page) {
  const following = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/events');
  await page.goto(`${BASE}/inbox`);
  assert.equal((await following).status(), 200, 'the inbox follows events');
  await page.locator('#unread').filter({ hasText: /unread|All listened to/ }).waitFor();
}

test('a note sent to someone appears in their open inbox without a reload', async () => {
  const [ann, bob] = await Promise.all([newUser(), newUser()]);
  const annSide = await signedIn(ann);
  const bobSide = await signedIn(bob);
  try {
    const inbox = bobSide.page;
    await openInbox(inbox);
    await inbox.getByText('Nothing received yet.').waitFor();
    assert.equal(await inbox.title(), 'Inbox · Hark');
    // Survives only as long as the document does: a reload would drop it.
    await inbox.evaluate(() => { window.sameDocument = true; });

    // Ann sends one over the API...
    await uploadFile(ann.token, SPEECH_WAV, { title: 'Driver at the gate', to: bob.email });
    await entry(inbox, 'Driver at the gate').waitFor();
    await entry(inbox, 'Driver at the gate').getByText('New', { exact: true }).waitFor();
    await titleBecomes(inbox, '(1) Inbox · Hark');
    assert.match(await entry(inbox, 'Driver at the gate').innerText(), new RegExp(`From ${ann.email}`));
    assert.equal(await inbox.getByText('Nothing received yet.').isVisible(), false);

    // ...and one from her note's page, in her own browser.
    const note = await uploadFile(ann.token, SPEECH_OGG_OPUS, { title: 'Parcel at the door' });
    const notePage = annSide.page;
    await notePage.goto(`${BASE}/notes/${note.id}`);
    await notePage.getByRole('heading', { name: 'Parcel at the door' }).waitFor();
    await notePage.getByLabel('Recipients').fill(bob.email);
    await notePage.getByRole('button', { name: 'Send', exact: true }).click();
    await notePage.getByText('Sent to 1 recipient.').waitFor();

    await entry(inbox, 'Parcel at the door').getByText('New', { exact: true }).waitFor();
    await titleBecomes(inbox, '(2) Inbox · Hark');
    await inbox.getByRole('status').filter({ hasText: '2 unread' }).waitFor();
    // Newest first.
    const titles = await inbox.getByRole('list', { name: 'Received notes' }).getByRole('link').allInnerTexts();
    assert.deepEqual(titles, ['Parcel at the door', 'Driver at the gate']);
    assert.equal(await inbox.evaluate(() => window.sameDocument), true, 'the inbox was not reloaded');
  } finally {
    await annSide.context.close();
    await bobSide.context.close();
  }
});

test('playing a note to its end marks it listened', async () => {
  const [ann, bob] = await Promise.all([newUser(), newUser()]);
  await uploadFile(ann.token, SPEECH_WAV, { title: 'First of two', to: bob.email });
  await uploadFile(ann.token, SPEECH_OGG_OPUS, { title: 'Second of two', to: bob.email });
  const { context, page } = await signedIn(bob);
  try {
    await openInbox(page);
    await titleBecomes(page, '(2) Inbox · Hark');
    const first = entry(page, 'First of two');
    await first.getByText('New', { exact: true }).waitFor();

    // The player, from its last moments, as if someone had listened up to there.
    const audio = page.getByLabel('Play First of two');
    await audio.evaluate(async (element) => {
      element.muted = true;
      element.preload = 'auto';
      if (element.readyState < HTMLMediaElement.HAVE_METADATA) {
        await new Promise((loaded, failed) => {
          element.addEventListener('loadedmetadata', loaded, { once: true });
          element.addEventListener('error', () => failed(new Error(`the audio did not load: ${element.error?.message}`)), { once: true });
          element.load();
        });
      }
      element.currentTime = Math.max(0, element.duration - 0.3);
      await element.play();
    });

    await titleBecomes(page, '(1) Inbox · Hark');
    await first.getByText('New', { exact: true }).waitFor({ state: 'hidden' });
    assert.equal(await entry(page, 'Second of two').getByText('New', { exact: true }).isVisible(), true,
      'the other note is still new');
    await page.getByRole('status').filter({ hasText: '1 unread' }).waitFor();

    const items = await eventually('the listen to be recorded', async () => {
      const { items } = await api(bob.token, 'GET', '/api/v1/inbox');
      return items.find((i) => i.note.title === 'First of two')?.listened_at ? items : null;
    });
    assert.equal(items.find((i) => i.note.title === 'Second of two').listened_at, null);
  } finally {
    await context.close();
  }
});

test('the inbox with notes is accessible and fits a phone', async () => {
  const [ann, bob] = await Promise.all([newUser(), newUser()]);
  const channel = `inbox-${Date.now().toString(36)}`;
  await api(ann.token, 'POST', '/api/v1/channels', { name: channel });
  await api(ann.token, 'PUT', `/api/v1/channels/${channel}/members/${encodeURIComponent(bob.email)}`);
  await uploadFile(ann.token, SPEECH_WAV, { title: 'Hello from the driver', to: bob.email });
  await uploadFile(ann.token, SPEECH_OGG_OPUS, { title: 'Parcel for the team', channel });
  await api(bob.token, 'POST', `/api/v1/inbox/${(await api(bob.token, 'GET', '/api/v1/inbox')).items[0].note.id}/listened`);
  const { context, page } = await signedIn(bob);
  try {
    await openInbox(page);
    await entry(page, 'Hello from the driver').waitFor();
    await entry(page, 'Parcel for the team').getByText(`in ${channel}`).waitFor();
    await checkA11y(page, '/inbox with notes');
    await assertNoHorizontalScroll(page);
    await screenshot(page, 'inbox');
  } finally {
    await context.close();
  }
});
