"""One reviewer's day in the console, in headless Chromium (Debian's chromium and
chromium-driver, Python's selenium; scripts/test installs them).

    python3 reviewer_day.py BASE_URL SCREENSHOT_DIR

with REVIEWER_KEY (write, review, read) and READER_KEY (read) in the environment, against a
`tower serve` whose worker runs Tests/Browser/fake_agent.sh. Prints {"ok": true} at the end;
any failed check raises and exits non-zero with what was on the page.
"""
import json
import os
import sys

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

BASE, SHOTS = sys.argv[1].rstrip("/"), sys.argv[2]
REVIEWER_KEY, READER_KEY = os.environ["REVIEWER_KEY"], os.environ["READER_KEY"]
OBJECTIVE = "Rewrite the README install steps"


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    # An explicit driver: selenium must not try to download one.
    return webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)


driver = browser()
# A wait polls the page while it navigates or reloads itself (the task page does so every 3 s
# while its task waits or runs): an element found just before the new page replaced it is stale,
# which means "not yet", not failure.
wait = WebDriverWait(driver, 60, ignored_exceptions=(StaleElementReferenceException,))


def check(condition, what):
    if not condition:
        raise AssertionError(f"{what}\n--- page {driver.current_url} ---\n{text()[:3000]}")


def text():
    """The page's text; read again if the page replaced its body while it was being read."""
    for _ in range(10):
        try:
            return driver.find_element(By.TAG_NAME, "body").text
        except StaleElementReferenceException:
            continue
    return driver.find_element(By.TAG_NAME, "body").text


def shot(name):
    """A full-page screenshot: the window grows to the page's height first."""
    width = driver.get_window_size()["width"]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height + 120, 600), 4000))
    driver.save_screenshot(os.path.join(SHOTS, name + ".png"))
    driver.set_window_size(width, 900)


def usable(page):
    """Every control has a label, and nothing is wider than the window."""
    unlabeled = driver.execute_script(
        "return [...document.querySelectorAll('input:not([type=hidden]),select,textarea')]"
        ".filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.name)")
    check(unlabeled == [], f"{page}: controls without a label: {unlabeled}")
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    check(overflow <= 1, f"{page}: {overflow}px wider than the window")


def sign_in(key):
    driver.get(BASE + "/ui")
    check(driver.current_url.endswith("/ui/login"), "a signed-out browser is sent to sign in")
    field = driver.find_element(By.ID, "key")
    check(driver.switch_to.active_element == field, "the key field has the focus")
    field.send_keys(key + Keys.ENTER)  # the keyboard alone signs in
    wait.until(lambda d: "Overview" in d.title)


try:
    # A wrong key.
    driver.get(BASE + "/ui")
    usable("sign-in")
    shot("01-sign-in")
    driver.find_element(By.ID, "key").send_keys("tower_not-a-key" + Keys.ENTER)
    wait.until(lambda d: "That key is not valid." in text())

    # The reviewer signs in and sees the overview.
    sign_in(REVIEWER_KEY)
    check("Signed in as alice" in text(), "the key's name is shown")
    usable("overview")

    # A task, enqueued from the tasks page.
    driver.find_element(By.LINK_TEXT, "Tasks").click()
    driver.find_element(By.TAG_NAME, "summary").click()
    driver.find_element(By.ID, "new-objective").send_keys(OBJECTIVE)
    driver.find_element(By.ID, "new-repo").send_keys("myorg/docs")
    driver.find_element(By.ID, "new-criteria").send_keys("The README shows the pip command")
    usable("tasks with the new-task form")
    driver.find_element(By.XPATH, "//button[text()='Enqueue']").click()
    wait.until(lambda d: "/ui/tasks/" in d.current_url)
    # The task page reloads itself while the task waits and runs.
    wait.until(lambda d: "completed" in d.find_element(By.CSS_SELECTOR, "dl.figures").text)
    shot("03-task")

    # A form posted without its CSRF token is refused.
    driver.get(BASE + "/ui/tasks")
    driver.find_element(By.TAG_NAME, "summary").click()
    driver.execute_script("document.querySelector('form[action=\"/ui/tasks\"] input[name=csrf]').remove()")
    driver.find_element(By.ID, "new-objective").send_keys("A forged task")
    driver.find_element(By.ID, "new-repo").send_keys("myorg/docs")
    driver.find_element(By.XPATH, "//button[text()='Enqueue']").click()
    wait.until(lambda d: "Refused" in d.title)
    check("CSRF" in text(), "the refusal says why")

    # Find the task by text.
    driver.get(BASE + "/ui/tasks")
    search = driver.find_element(By.ID, "q")
    search.send_keys("readme install" + Keys.ENTER)
    wait.until(lambda d: "q=readme" in d.current_url)
    rows = driver.find_elements(By.CSS_SELECTOR, "tbody tr")
    check(len(rows) == 1 and OBJECTIVE in rows[0].text, "the search finds the one task")
    check("A forged task" not in text(), "the forged form created nothing")
    shot("02-tasks")

    # The reviews page lists it.
    driver.find_element(By.LINK_TEXT, "Reviews").click()
    check(OBJECTIVE in text() and "Verdict" in text(), "the Run waits for a review with its evidence")
    shot("04-reviews")

    # Open the task, then its Run: the diff and the evidence.
    driver.find_element(By.LINK_TEXT, OBJECTIVE).click()
    driver.find_element(By.PARTIAL_LINK_TEXT, "Run ").click()
    wait.until(lambda d: "/ui/runs/" in d.current_url)
    added = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".diff .add")]
    removed = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".diff .del")]
    check("+Install with pip:" in added and "-Run setup.py install." in removed, f"the patch as a diff: {added} {removed}")
    colour = driver.execute_script("return getComputedStyle(document.querySelector('.diff .add')).backgroundColor")
    check(colour == "rgb(218, 251, 225)", f"added lines are green: {colour}")
    check("Verdict" in text() and "The README shows the pip command" in text(), "the evidence with its criterion")
    usable("run")
    shot("05-run")

    # A trace file, one of the folder's.
    run_url = driver.current_url
    driver.find_element(By.LINK_TEXT, "manifest.json").click()
    check('"run_id"' in text(), "the manifest's text")
    driver.get(run_url)

    # Approve it.
    driver.find_element(By.CSS_SELECTOR, "textarea[name=reason]").send_keys("The pip command is right.")
    driver.find_element(By.XPATH, "//button[text()='Approve']").click()
    wait.until(lambda d: "Decision recorded" in text())
    check("Reviewed by alice: approved" in text(), "the decision, by the key's name")
    check("(done)" in driver.find_element(By.CSS_SELECTOR, "dl.figures").text, "the Issue is done")
    shot("06-approved")
    driver.get(BASE + "/ui/reviews")
    check("Nothing waits for a review." in text(), "nothing left to review")

    # On a phone.
    driver.set_window_size(390, 844)
    driver.get(run_url)
    usable("run on a phone")
    driver.save_screenshot(os.path.join(SHOTS, "07-run-phone.png"))
    driver.set_window_size(1280, 900)

    # Keyboard: the skip link comes first, then the navigation.
    driver.get(BASE + "/ui")
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    check(driver.switch_to.active_element.text == "Skip to content", "Tab reaches the skip link first")
    driver.switch_to.active_element.send_keys(Keys.TAB)
    check(driver.switch_to.active_element.text == "Overview", "then the navigation")

    # Sign out; a read-only key sees no action.
    driver.find_element(By.XPATH, "//button[text()='Sign out']").click()
    wait.until(lambda d: d.current_url.endswith("/ui/login"))
    sign_in(READER_KEY)
    driver.get(run_url)
    check(not driver.find_elements(By.XPATH, "//button[text()='Approve']"), "a read-only key sees no decision buttons")
    driver.get(BASE + "/ui/tasks")
    check(not driver.find_elements(By.TAG_NAME, "summary"), "nor the new-task form")
    driver.find_element(By.LINK_TEXT, OBJECTIVE).click()
    buttons = [b.text for b in driver.find_elements(By.TAG_NAME, "button")]
    check(buttons == ["Sign out"], f"a read-only key's only button is Sign out: {buttons}")
    driver.get(BASE + "/ui")
    shot("08-overview")
    print(json.dumps({"ok": True}))
except (AssertionError, TimeoutException):
    driver.save_screenshot(os.path.join(SHOTS, "failure.png"))
    print(f"--- page {driver.current_url} ---\n{text()[:3000]}", file=sys.stderr)
    raise
finally:
    driver.quit()
