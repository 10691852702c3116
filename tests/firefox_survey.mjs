// The survey page in Firefox (WebDriver BiDi, driven by Puppeteer): start, rate three
// panels by keyboard, reload, check the fit at 1280x800 and the saved answers.
// Usage: node tests/firefox_survey.mjs <puppeteer-core dir> <firefox binary> <index.html URL>
import { createRequire } from "module";
const require = createRequire(import.meta.url);
const [puppeteerDir, firefox, url] = process.argv.slice(2);
const puppeteer = require(puppeteerDir);

const browser = await puppeteer.launch({browser: "firefox", executablePath: firefox, headless: true,
                                        args: ["--width=1280", "--height=800"]});
try {
  const page = await browser.newPage();
  await page.setViewport({width: 1280, height: 800});
  const errors = [];
  page.on("pageerror", e => errors.push(String(e)));
  await page.goto(url + "?rater=fox");
  await page.select("#profile-0", "radiology");
  await page.click("#consent");
  await page.click("#start");
  const ready = () => page.waitForFunction(
    "document.querySelector('#grid[aria-busy=false]') && !document.getElementById('panel-screen').hidden");
  await ready();
  for (let i = 0; i < 3; i++) {
    await page.keyboard.press(String(i + 1));
    await page.keyboard.press(String(i + 2));
    await page.keyboard.press("Enter");
    await ready();
  }
  await page.reload();
  await ready();
  const result = await page.evaluate(() => {
    const inside = e => { const b = e.getBoundingClientRect();
                          return b.left >= 0 && b.top >= 0 && b.right <= innerWidth && b.bottom <= innerHeight; };
    const key = Object.keys(localStorage).find(k => k.includes(":rater:fox"));
    const state = JSON.parse(localStorage.getItem(key));
    return {
      progress: document.getElementById("progress-text").textContent,
      fits: [...document.querySelectorAll("#grid img, #aspects .choice, #prompt, #next")].every(inside),
      smallest: Math.min(...[...document.querySelectorAll("#grid img")].map(i => {
        const b = i.getBoundingClientRect(); return Math.min(b.width, b.height); })),
      ratings: [0, 1, 2].map(p => state.answers[String(p)].ratings),
      events: state.events.length,
      userAgent: navigator.userAgent,
    };
  });
  result.errors = errors;
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
