// Signing in and out through the pages: registration, sign-out, the way back to where one
// was going, wrong passwords, the keyboard alone; and what the session cookie does not allow:
// API changes without the page's CSRF token, forms posted from another site, and another
// user's note.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { test } from 'node:test';
import {
  BASE, SPEECH_WAV, api, assertNoHorizontalScroll, checkA11y, useBrowser, newUser, screenshot, signIn,
  uploadFile,
} from './lib.mjs';

const browser = useBrowser();

/** A fresh browser context (its own cookies) and a page in it. */
async function fresh() {
  const context = await browser.newContext();
  return { context, page: await context.newPage() };
}

async function onLibrary(page) {
  await page.getByRole('heading', { name: 'Library', level: 1 }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/');
}

test('a newcomer registers, signs out, is sent to sign in, and signs in again', async () => {
  const email = `ui-new-${randomBytes(5).toString('hex')}@example.com`;
  const password = randomBytes(10).toString('hex');
  const { context, page } = await fresh();
  try {
    await page.goto(`${BASE}/signin`);
    await page.getByRole('link', { name: 'Register' }).click();
    await page.waitForURL(`${BASE}/register`);
    await page.getByRole('heading', { name: 'Register', level: 1 }).waitFor();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Register' }).click();
    await page.waitForURL(`${BASE}/`);
    await onLibrary(page);
    assert.match(await page.getByRole('navigation', { name: 'Main' }).innerText(), new RegExp(email.replace(/[.]/g, '\\.')));
    // The account is a real one: the API takes the same password.
    await api(null, 'POST', '/token', { email, password });

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${BASE}/signin`);
    await page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    assert.equal((await context.cookies()).some((c) => c.name === 'hark_session'), false, 'the cookie is gone');

    // Signed out, a page of the app sends one to sign in, and back there afterwards.
    await page.goto(`${BASE}/inbox`);
    assert.equal(new URL(page.url()).pathname, '/signin');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/inbox');
    await page.goto(`${BASE}/`);
    assert.equal(new URL(page.url()).pathname, '/signin');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${BASE}/`);
    await onLibrary(page);

    // The way back to where one was going.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${BASE}/signin`);
    await page.goto(`${BASE}/settings`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${BASE}/settings`);
    await page.getByRole('heading', { name: 'Settings', level: 1 }).waitFor();
  } finally {
    await context.close();
  }
});

test('a wrong password is refused with an alert and the email kept', async () => {
  const user = await newUser();
  const { context, page } = await fresh();
  try {
    await page.goto(`${BASE}/signin`);
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password').fill(`${user.password}-not`);
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/signin'),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    assert.equal(answer.status(), 401);
    await page.getByRole('alert').waitFor();
    assert.ok((await page.getByRole('alert').innerText()).trim().length > 0, 'the alert says something');
    assert.equal(new URL(page.url()).pathname, '/signin');
    assert.equal(await page.getByLabel('Email').inputValue(), user.email);
    assert.equal(await page.getByLabel('Password').inputValue(), '');
    assert.equal((await context.cookies()).some((c) => c.name === 'hark_session'), false);
    await checkA11y(page, '/signin with an error');

    // The right one still works.
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${BASE}/`);
    await onLibrary(page);
  } finally {
    await context.close();
  }
});

test('signing in with the keyboard alone', async () => {
  const user = await newUser();
  const { context, page } = await fresh();
  try {
    await page.goto(`${BASE}/signin`);
    const focused = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName);
    // From the top of the page, Tab reaches the email field after the skip link and the brand.
    let tabs = 0;
    while ((await focused()) !== 'email') {
      assert.ok(++tabs <= 5, `Tab did not reach the email field (at ${await focused()})`);
      await page.keyboard.press('Tab');
    }
    await page.keyboard.type(user.email);
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'password');
    await page.keyboard.type(user.password);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${BASE}/`);
    await onLibrary(page);
  } finally {
    await context.close();
  }
});

test('the API refuses a change from the page without its CSRF token', async () => {
  const user = await newUser();
  const { context, page } = await fresh();
  try {
    await signIn(page, user);
    await onLibrary(page);
    const post = (withToken) => page.evaluate(async (withToken) => {
      const headers = { 'content-type': 'application/json' };
      if (withToken) headers['X-CSRF-Token'] = document.querySelector('meta[name="csrf-token"]').content;
      const res = await fetch('/api/v1/api-keys', { method: 'POST', headers, body: JSON.stringify({ name: 'from the page' }) });
      return { status: res.status, type: res.headers.get('content-type'), body: await res.json() };
    }, withToken);

    const refused = await post(false);
    assert.equal(refused.status, 403);
    assert.match(refused.type, /^application\/problem\+json/);
    assert.equal(refused.body.code, 'forbidden');
    assert.deepEqual((await api(user.token, 'GET', '/api/v1/api-keys')).items, []);

    const made = await post(true);
    assert.equal(made.status, 201);
    assert.equal(made.body.name, 'from the page');
    assert.equal((await api(user.token, 'GET', '/api/v1/api-keys')).items.length, 1);
  } finally {
    await context.close();
  }
});

/** A page of another site (`localhost`, where the server is `127.0.0.1`) that serves `html`. */
async function otherSite(html) {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
  });
  await new Promise((listening) => server.listen(0, '127.0.0.1', listening));
  return { url: `http://localhost:${server.address().port}/`, close: () => new Promise((closed) => server.close(closed)) };
}

/**
 * Signs `user` in, then opens a page of another site that posts `form` to the server at once,
 * and waits for the server's answer to it.
 */
async function postedFromElsewhere(page, user, form) {
  assert.equal(new URL(BASE).hostname, '127.0.0.1', 'the other site is told apart by its host name');
  await signIn(page, user);
  await onLibrary(page);
  const site = await otherSite(`<!doctype html><title>Win a prize</title><body>${form}` +
    '<script>document.forms[0].submit()</script></body>');
  try {
    const posted = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().startsWith(BASE));
    await page.goto(site.url);
    const answer = await posted;
    await answer.finished();
    await page.waitForLoadState();
    return answer;
  } finally {
    await site.close();
  }
}

/** Fails unless the page's context is still signed in. */
async function stillSignedIn(page) {
  await page.goto(`${BASE}/`);
  assert.equal(new URL(page.url()).pathname, '/', 'still signed in');
  await onLibrary(page);
}

test('a form posted to the API from another site changes nothing', async () => {
  const user = await newUser();
  const { context, page } = await fresh();
  try {
    // A form can send text/plain, and so a body that reads as JSON.
    const answer = await postedFromElsewhere(page, user,
      `<form method="post" action="${BASE}/api/v1/api-keys" enctype="text/plain">` +
      '<input type="hidden" name=\'{"name":"planted","x":"\' value=\'"}\'></form>');
    assert.ok([401, 403].includes(answer.status()), `refused, not ${answer.status()}`);
    assert.deepEqual((await api(user.token, 'GET', '/api/v1/api-keys')).items, [], 'no key was made');
    await stillSignedIn(page);
  } finally {
    await context.close();
  }
});

// The session cookie is SameSite=Lax, so another site's form reaches /signout without it; the
// server must then leave the browser's cookie alone.
test('a sign-out posted from another site does not sign one out', async () => {
  for (const fields of ['<input type="hidden" name="csrf" value="guess">', '']) {
    const user = await newUser();
    const { context, page } = await fresh();
    try {
      await postedFromElsewhere(page, user, `<form method="post" action="${BASE}/signout">${fields}</form>`);
      await stillSignedIn(page);
    } finally {
      await context.close();
    }
  }
});

test("another user's note is not found", async () => {
  const [ann, bob] = await Promise.all([newUser(), newUser()]);
  const note = await uploadFile(ann.token, SPEECH_WAV, { title: 'Only for ann' });
  const { context, page } = await fresh();
  try {
    await signIn(page, bob);
    const answer = await page.goto(`${BASE}/notes/${note.id}`);
    assert.equal(answer.status(), 404);
    await page.getByRole('heading', { name: 'Not found', level: 1 }).waitFor();
    assert.equal((await page.content()).includes('Only for ann'), false);
    // The same page as for a note that does not exist at all.
    const none = await page.goto(`${BASE}/notes/01a00000-0000-7000-8000-000000000000`);
    assert.equal(none.status(), 404);
    await page.getByRole('heading', { name: 'Not found', level: 1 }).waitFor();
  } finally {
    await context.close();
  }
});

test('the sign-in and registration pages are accessible and fit a phone', async () => {
  const { context, page } = await fresh();
  try {
    for (const [path, name] of [['/signin', 'signin'], ['/register', 'register']]) {
      await page.goto(`${BASE}${path}`);
      await page.getByLabel('Password').waitFor();
      await checkA11y(page, path);
      await assertNoHorizontalScroll(page);
      await screenshot(page, name);
    }
  } finally {
    await context.close();
  }
});
