// Settings: channels and their members, webhooks with their one-time secret and delivery log,
// and personal API keys, each made and undone through the page and checked over the API.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { test } from 'node:test';
import {
  BASE, SPEECH_WAV, api, assertNoHorizontalScroll, checkA11y, eventually, useBrowser, newUser, screenshot,
  signIn, uploadFile,
} from './lib.mjs';

const browser = useBrowser();

/** `user` signed in on /settings in a browser context of their own. */
async function openSettings(user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, user);
  await page.goto(`${BASE}/settings`);
  await settled(page);
  return { context, page };
}

/** Waits until the three lists have loaded (each shows its items or says it has none). */
async function settled(page) {
  for (const name of ['Your channels', 'Your webhooks', 'Your API keys']) {
    await page.getByRole('list', { name }).getByRole('listitem').first().waitFor();
  }
}

/** A receiver of webhook deliveries on this machine: records each request, answers 200. */
async function hookReceiver() {
  const requests = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise((listening) => server.listen(0, '127.0.0.1', listening));
  const url = `http://127.0.0.1:${server.address().port}/hooks/hark`;
  return { url, requests, close: () => new Promise((closed) => server.close(closed)) };
}

/** A request with a bearer token that answers only its status. */
async function statusWith(token, path) {
  const res = await fetch(`${BASE}${path}`, { headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  return res.status;
}

test('a channel is made, gains a member who gets its notes, and loses them again', async () => {
  const [ann, bob] = await Promise.all([newUser(), newUser()]);
  const name = `crew-${randomBytes(4).toString('hex')}`;
  const { context, page } = await openSettings(ann);
  try {
    await page.getByRole('list', { name: 'Your channels' }).getByText('No channels yet.').waitFor();
    await page.getByLabel('Channel name').fill(name);
    await page.getByRole('button', { name: 'Create channel' }).click();
    await page.getByRole('heading', { name, level: 3 }).waitFor();
    await page.getByText(`Channel ${name} created.`).waitFor();
    assert.equal(await page.getByLabel('Channel name').inputValue(), '', 'the form is emptied');

    const channel = page.getByRole('list', { name: 'Your channels' }).getByRole('listitem')
      .filter({ has: page.getByRole('heading', { name, level: 3 }) });
    await channel.getByText('No members yet.').waitFor();
    await channel.getByLabel('Member email').fill(bob.email);
    await channel.getByRole('button', { name: 'Add member' }).click();
    await page.getByText(`${bob.email} added to ${name}.`).waitFor();
    // Members are shown by email; the API lists their ids beside.
    const members = page.getByRole('list', { name: `Members of ${name}` });
    await members.getByRole('listitem').filter({ hasText: bob.email }).waitFor();
    const listed = await api(ann.token, 'GET', '/api/v1/channels');
    assert.deepEqual(listed.items.find((c) => c.name === name).members, [bob.id]);
    assert.deepEqual(listed.items.find((c) => c.name === name).member_emails, [bob.email]);

    const note = await uploadFile(ann.token, SPEECH_WAV, { title: 'For the crew', channel: name });
    const { items } = await api(bob.token, 'GET', '/api/v1/inbox');
    const received = items.find((i) => i.note.id === note.id);
    assert.ok(received, 'the member got the channel note');
    assert.equal(received.channel, name);

    await members.getByRole('button', { name: `Remove ${bob.email} from ${name}` }).click();
    await page.getByText(`${bob.email} removed.`).waitFor();
    await channel.getByText('No members yet.').waitFor();
    const after = await api(ann.token, 'GET', '/api/v1/channels');
    assert.deepEqual(after.items.find((c) => c.name === name).members, []);
  } finally {
    await context.close();
  }
});

test('a webhook shows its secret once, logs its deliveries and is deleted', async () => {
  const ann = await newUser();
  const receiver = await hookReceiver();
  const { context, page } = await openSettings(ann);
  try {
    await page.getByLabel('Webhook URL').fill(receiver.url);
    // The events most people want are already ticked.
    const ticked = await page.getByRole('group', { name: 'Events' }).getByRole('checkbox', { checked: true }).evaluateAll(
      (boxes) => boxes.map((b) => b.value));
    assert.deepEqual(ticked.sort(), ['note.ready', 'note.received']);
    await page.getByRole('button', { name: 'Add webhook' }).click();

    const secret = (await page.locator('#webhook-secret code.secret').innerText()).trim();
    assert.match(secret, /^whsec_[A-Za-z0-9+/=_-]{16,}$/);
    const hook = page.getByRole('list', { name: 'Your webhooks' }).getByRole('listitem').filter({ hasText: receiver.url });
    await hook.waitFor();
    assert.match(await hook.innerText(), /note\.received, note\.ready|note\.ready, note\.received/);
    const [created] = (await api(ann.token, 'GET', '/api/v1/webhooks')).items;
    assert.equal(created.url, receiver.url);
    assert.equal(created.secret, undefined, 'a listed webhook has no secret');

    await page.reload();
    await settled(page);
    await hook.waitFor();
    assert.ok(!(await page.content()).includes(secret), 'the secret is gone after a reload');

    // An event: a note of hers becomes ready.
    const note = await uploadFile(ann.token, SPEECH_WAV, { title: 'Hook me' });
    // Transcribing takes a few seconds, longer on a busy machine.
    await eventually('the note to be ready', async () => (await api(ann.token, 'GET', `/api/v1/notes/${note.id}`)).status === 'ready',
      { timeout: 120_000 });
    const delivered = await eventually('a POST of note.ready to the receiver', () =>
      receiver.requests.find((r) => r.method === 'POST' && JSON.parse(r.body).type === 'note.ready'));
    assert.equal(delivered.url, '/hooks/hark');
    assert.ok(delivered.headers['webhook-signature']?.startsWith('v1,'), 'the delivery is signed');

    // The log records the attempt once the answer is in.
    await eventually('the attempt to be recorded', async () => {
      const { items } = await api(ann.token, 'GET', `/api/v1/webhooks/${created.id}/deliveries`);
      return items.some((d) => d.event_type === 'note.ready' && d.state === 'delivered');
    });
    const show = page.getByRole('button', { name: `Deliveries to ${receiver.url}` });
    await show.click();
    assert.equal(await show.getAttribute('aria-expanded'), 'true');
    const log = page.getByRole('table', { name: `Deliveries to ${receiver.url}` });
    const row = log.getByRole('row').filter({ hasText: 'note.ready' });
    await row.waitFor();
    const cells = await row.getByRole('cell').allInnerTexts();
    assert.equal(cells[0], 'note.ready');
    assert.equal(cells[1], '1', 'delivered at the first attempt');
    assert.equal(cells[2], 'delivered (200)');
    await checkA11y(page, '/settings with a delivery log');

    await page.getByRole('button', { name: `Delete webhook ${receiver.url}` }).click();
    await page.getByText('Webhook deleted.').waitFor();
    await page.getByRole('list', { name: 'Your webhooks' }).getByText('No webhooks yet.').waitFor();
    assert.deepEqual((await api(ann.token, 'GET', '/api/v1/webhooks')).items, []);
  } finally {
    await context.close();
    await receiver.close();
  }
});

test('an API key is shown once, works as a bearer token and stops working when revoked', async () => {
  const ann = await newUser();
  const name = `laptop ${randomBytes(3).toString('hex')}`;
  const { context, page } = await openSettings(ann);
  try {
    await page.getByLabel('Key name').fill(name);
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = (await page.locator('#new-key').innerText()).trim();
    assert.ok(key.length >= 20, `a key, not ${JSON.stringify(key)}`);
    const keys = page.getByRole('list', { name: 'Your API keys' });
    await keys.getByRole('listitem').filter({ hasText: name }).waitFor();

    assert.equal(await statusWith(key, '/api/v1/users/me'), 200);
    const me = await api(key, 'GET', '/api/v1/users/me');
    assert.equal(me.email, ann.email);

    await page.reload();
    await settled(page);
    const listed = keys.getByRole('listitem').filter({ hasText: name });
    await listed.waitFor();
    assert.ok(!(await page.content()).includes(key), 'the key is gone after a reload');
    assert.equal(await page.locator('#new-key').count(), 0);

    await listed.getByRole('button', { name: `Revoke ${name}` }).click();
    await page.getByText(`Key ${name} revoked.`).waitFor();
    await keys.getByText('No API keys yet.').waitFor();
    assert.equal(await statusWith(key, '/api/v1/users/me'), 401);
  } finally {
    await context.close();
  }
});

test('settings with a channel, a webhook and a key are accessible and fit a phone', async () => {
  const [ann, bob] = await Promise.all([newUser(), newUser()]);
  const channel = `team-${randomBytes(4).toString('hex')}`;
  await api(ann.token, 'POST', '/api/v1/channels', { name: channel });
  await api(ann.token, 'PUT', `/api/v1/channels/${channel}/members/${encodeURIComponent(bob.email)}`);
  // A channel someone else made, which she only belongs to.
  const theirs = `desk-${randomBytes(4).toString('hex')}`;
  await api(bob.token, 'POST', '/api/v1/channels', { name: theirs });
  await api(bob.token, 'PUT', `/api/v1/channels/${theirs}/members/${encodeURIComponent(ann.email)}`);
  await api(ann.token, 'POST', '/api/v1/webhooks', {
    url: 'https://hooks.example.com/a/rather/long/path/for/hark/events', events: ['note.ready'],
  });
  await api(ann.token, 'POST', '/api/v1/api-keys', { name: 'phone' });
  const { context, page } = await openSettings(ann);
  try {
    await page.getByRole('heading', { name: theirs, level: 3 }).waitFor();
    await page.getByText(`Managed by ${bob.email}.`).waitFor();
    await checkA11y(page, '/settings');
    await assertNoHorizontalScroll(page);
    await screenshot(page, 'settings');
  } finally {
    await context.close();
  }
});
