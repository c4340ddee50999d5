// How fast the library renders a big collection: one user with 500 notes, the library page
// opened in Chromium showing 50 (its default page) and all 500 at once, timed from the start
// of navigation until the table holds its rows. The peer, in the same run and the same page:
// the same list fetched as JSON over the API alone, which the page cannot beat.
// Run by `bash scripts/ui-test.sh --bench`; HARK_BENCH_NOTES and HARK_BENCH_ROUNDS change the
// sizes.
import { readFile } from 'node:fs/promises';
import { BASE, SPEECH_WAV, api, launch, newUser, signIn } from './lib.mjs';

const NOTES = Number(process.env.HARK_BENCH_NOTES ?? 500);
const ROUNDS = Number(process.env.HARK_BENCH_ROUNDS ?? 15);

const user = await newUser();
const bytes = new Uint8Array(await readFile(SPEECH_WAV));
let made = 0;
async function uploader() {
  while (made < NOTES) {
    const n = made++;
    const name = `note-${String(n).padStart(4, '0')}.wav`;
    await api(user.token, 'POST', `/api/v1/notes?name=${name}&title=Delivery%20${n}`, bytes);
  }
}
await Promise.all(Array.from({ length: 8 }, uploader));

const browser = await launch();
const page = await browser.newPage();
await signIn(page, user);

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const report = (label, times) =>
  console.log(`${label.padEnd(44)} p50 ${percentile(times, 50).toFixed(1).padStart(6)} ms   p90 ${percentile(times, 90).toFixed(1).padStart(6)} ms`);

async function pageRender(limit) {
  const times = [];
  for (let round = 0; round < ROUNDS + 2; round++) {
    await page.goto(`${BASE}/?limit=${limit}`);
    await page.waitForFunction((rows) => document.querySelectorAll('#notes tbody tr').length === rows
      && /shown/.test(document.querySelector('#summary').textContent), Math.min(limit, NOTES));
    // Until the rows are laid out and painted: the next frame after they are in the document.
    const ms = await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => setTimeout(() => done(performance.now()), 0))));
    if (round >= 2) times.push(ms);
  }
  return times;
}

async function jsonOnly(limit) {
  const times = [];
  for (let round = 0; round < ROUNDS + 2; round++) {
    const ms = await page.evaluate(async (limit) => {
      const start = performance.now();
      const response = await fetch(`/api/v1/notes?limit=${limit}`);
      await response.json();
      return performance.now() - start;
    }, limit);
    if (round >= 2) times.push(ms);
  }
  return times;
}

console.log(`library of ${NOTES} notes, ${ROUNDS} rounds each, Chromium headless`);
for (const limit of [50, NOTES]) {
  report(`page shown with ${limit} rows (navigation to paint)`, await pageRender(limit));
  report(`peer: GET /api/v1/notes?limit=${limit} as JSON`, await jsonOnly(limit));
}
await browser.close();
