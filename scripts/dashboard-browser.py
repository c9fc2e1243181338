#!/usr/bin/env python3
"""Loads a dgrid dashboard in headless Chromium through Selenium and reports
what a person would see, as JSON on stdout (docs/ARCHITECTURE.md §12).

    dashboard-browser.py URL SCREENSHOT_PREFIX

Run it with the Python of scripts/selenium-venv.sh. Debian's chromium and
chromedriver are given by path (Selenium Manager never downloads anything).
The page is loaded at a phone's width (390 px) and at a desktop's (1280 px);
each gets a full-height screenshot, SCREENSHOT_PREFIX-phone.png and
-desktop.png. Reported:

  metrics     every element with data-metric: its name and the integer it shows
  console     the browser log (console messages, CSP violations, failed loads)
  title       document.title after load (a script that ran could change it)
  alert       the text of an alert() left open, or null
  active      counts of what could run or fetch: <script>, <img>, <iframe>,
              <object>, <embed>, <link>, elements with an on* attribute,
              and javascript: URLs
  overflow    how far the page is wider than a phone's screen (0: it fits)
  graph       the dependency graph as drawn: its SVG's rendered size, the task
              boxes by state (data-state), the summary boxes and the tasks they hold
  text        the page's visible text (for checks that hostile text is shown inert)
"""
import json, sys

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service

url, prefix = sys.argv[1], sys.argv[2]

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--disable-extensions", "--disable-background-networking",
             "--hide-scrollbars", "--force-device-scale-factor=1"):
    options.add_argument(flag)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})

ACTIVE = """
const count = s => document.querySelectorAll(s).length;
let handlers = 0, jsUrls = 0;
for (const el of document.querySelectorAll('*')) {
  for (const a of el.attributes) {
    if (a.name.toLowerCase().startsWith('on')) handlers++;
    if (/^\\s*javascript:/i.test(a.value)) jsUrls++;
  }
}
return {script: count('script'), img: count('img'), iframe: count('iframe'), object: count('object'),
        embed: count('embed'), link: count('link'), handlers: handlers, javascript_urls: jsUrls};
"""

GRAPH = """
const svg = document.querySelector('svg.graph');
if (!svg) return null;
const box = svg.getBoundingClientRect(), states = {};
for (const g of svg.querySelectorAll('g.task')) states[g.dataset.state] = (states[g.dataset.state] || 0) + 1;
const summaries = svg.querySelectorAll('g.summary');
let held = 0;
for (const g of summaries) held += parseInt(g.dataset.tasks, 10);
return {width: Math.round(box.width), height: Math.round(box.height), tasks: states,
        summaries: summaries.length, summary_tasks: held};
"""

driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
report = {"console": [], "screenshots": []}
try:
    driver.set_page_load_timeout(30)
    for name, width in (("phone", 390), ("desktop", 1280)):
        driver.set_window_size(width, 900)
        driver.get(url)
        try:
            report["alert"] = driver.switch_to.alert.text
            driver.switch_to.alert.dismiss()
        except NoAlertPresentException:
            report.setdefault("alert", None)
        report["console"] += [{"level": e.get("level"), "message": e.get("message"), "source": e.get("source")}
                              for e in driver.get_log("browser")]
        if name == "phone":
            report["title"] = driver.title
            report["active"] = driver.execute_script(ACTIVE)
            report["overflow"] = driver.execute_script(
                "return Math.max(0, document.documentElement.scrollWidth - window.innerWidth);")
            report["metrics"] = driver.execute_script("""
                const out = {};
                for (const el of document.querySelectorAll('[data-metric]')) {
                  const text = el.textContent.trim();
                  out[el.getAttribute('data-metric')] = /^[0-9]+$/.test(text) ? parseInt(text, 10) : text;
                }
                return out;""")
            report["text"] = driver.execute_script("return document.body.innerText;")
            report["graph"] = driver.execute_script(GRAPH)
        # The whole page: as tall as it is (capped), then one screenshot.
        height = driver.execute_script("return document.documentElement.scrollHeight;")
        driver.set_window_size(width, min(max(height, 600), 16000))
        path = f"{prefix}-{name}.png"
        driver.save_screenshot(path)
        report["screenshots"].append(path)
finally:
    driver.quit()
json.dump(report, sys.stdout)
print()
