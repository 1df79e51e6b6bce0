// The web chat page in a real browser: Debian's Chromium, headless, driven
// by puppeteer-core (run by with_server.sh, demo model). Opens the page,
// sends a message, waits for the streamed reply in the DOM, checks the
// session buttons, and saves a screenshot (argument 1, default
// page_test.png).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

const base = process.env.RWKV_HTTP_BASE;
assert.ok(base, "RWKV_HTTP_BASE is not set (run through with_server.sh)");
const screenshot = process.argv[2] || "page_test.png";
const chromium = process.env.CHROMIUM || "/usr/bin/chromium";
const profile = mkdtempSync(join(tmpdir(), "rwkv-page-"));

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  userDataDir: profile,
  // The flags that work on a machine without a network or a GPU.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  await page.setViewport({ width: 900, height: 700 });
  await page.goto(`${base}/`, { waitUntil: "networkidle0" });
  await page.waitForFunction(
    () => document.getElementById("session-id").textContent.startsWith("s-"));
  const session = await page.$eval("#session-id", (e) => e.textContent);
  assert.notEqual(await page.$eval("#model", (e) => e.textContent), "…");

  // Send a message; the reply streams into the log.
  await page.type("#message", "What is the capital of France?");
  await page.click("#send");
  await page.waitForSelector('.msg.assistant[data-done="true"]', { timeout: 60000 });
  const reply = await page.$eval(".msg.assistant .text", (e) => e.textContent);
  console.log(`reply in the DOM: ${JSON.stringify(reply)}`);
  assert.match(reply, /Paris/);
  await page.waitForFunction(
    () => Number(document.getElementById("session-tokens").textContent) > 0);
  const tokens = Number(await page.$eval("#session-tokens", (e) => e.textContent));
  const info = await (await fetch(`${base}/v1/sessions/${session}`)).json();
  assert.equal(info.token_count, tokens, "the page shows the session's state size");
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);

  // The download link serves the session's state file.
  const href = await page.$eval("#download-state", (e) => e.href);
  const state = await fetch(href);
  assert.equal(state.status, 200);
  assert.equal(state.headers.get("content-type"), "application/octet-stream");
  assert.ok((await state.arrayBuffer()).byteLength > 1000);

  // Fork switches to a copy of the state; the conversation goes on there;
  // reset returns the copy to where it started (the fork point); new
  // starts an empty session.
  await page.click("#fork-session");
  await page.waitForFunction((s) => document.getElementById("session-id").textContent !== s,
    {}, session);
  const forked = await page.$eval("#session-id", (e) => e.textContent);
  assert.equal((await (await fetch(`${base}/v1/sessions/${forked}`)).json()).token_count, tokens);
  await page.type("#message", "What is the capital of Spain?");
  await page.click("#send");
  await page.waitForFunction(() =>
    document.querySelectorAll('.msg.assistant[data-done="true"]').length === 2,
    { timeout: 60000 });
  const replies = await page.$$eval(".msg.assistant .text", (es) => es.map((e) => e.textContent));
  assert.match(replies[1], /Madrid/);
  await page.waitForFunction((t) =>
    Number(document.getElementById("session-tokens").textContent) > t, {}, tokens);
  assert.equal((await (await fetch(`${base}/v1/sessions/${session}`)).json()).token_count,
    tokens, "the original session is unchanged by the fork's turn");
  await page.click("#reset-session");
  await page.waitForFunction((t) =>
    document.getElementById("session-tokens").textContent === String(t), {}, tokens);
  await page.click("#new-session");
  await page.waitForFunction((s) => document.getElementById("session-id").textContent !== s,
    {}, forked);
  assert.equal(await page.$eval("#session-tokens", (e) => e.textContent), "0");
  assert.deepEqual(problems, []);
  console.log("PASS");
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
