// The harness itself: the browser starts, reaches the server and has a microphone.
// (The sign-in pages are session.test.mjs's.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BASE, useBrowser } from './lib.mjs';

const browser = useBrowser();

test('the browser loads the health check and the API docs', async () => {
  const page = await browser.newPage();
  try {
    const health = await page.goto(`${BASE}/healthz`);
    assert.equal(health.status(), 200);
    assert.ok(await health.json(), 'healthz answers JSON');

    const docs = await page.goto(`${BASE}/docs`);
    assert.equal(docs.status(), 200);
    // Swagger UI draws the document's title once it has fetched /openapi.json.
    await page.locator('.swagger-ui .info .title').waitFor();
  } finally {
    await page.close();
  }
});

test('the browser records from a fake microphone', async () => {
  const page = await browser.newPage();
  try {
    // A page of the server's own origin: getUserMedia needs a secure context, which
    // http://127.0.0.1 is.
    await page.goto(`${BASE}/healthz`);
    const recorded = await page.evaluate(async () => {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const recorder = new MediaRecorder(stream);
      const chunks = [];
      recorder.ondataavailable = (e) => chunks.push(e.data);
      const stopped = new Promise((done) => (recorder.onstop = done));
      recorder.start();
      await new Promise((done) => setTimeout(done, 500));
      recorder.stop();
      await stopped;
      stream.getTracks().forEach((t) => t.stop());
      const blob = new Blob(chunks, { type: recorder.mimeType });
      return { type: blob.type, size: blob.size };
    });
    assert.match(recorded.type, /^audio\//);
    assert.ok(recorded.size > 0, 'the recording has bytes');
  } finally {
    await page.close();
  }
});
