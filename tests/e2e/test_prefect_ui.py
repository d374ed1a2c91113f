"""A platform engineer's path through the Prefect UI, in headless Chromium: Deployments ->
ApplicationEnvironmentProvisioning -> Run -> Custom run, the request form filled with an
environment registered through the control plane, Submit, "View run" in the toast,
and the run page until it shows Completed. The screenshot of that page is kept under
``artifacts/e2e/``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``) and the ``selenium`` package; skipped only when Chromium
itself is missing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun, StateType

from blocks.platform.domain import WORKFLOW_APPENV_PROVISIONING
from tests.e2e.support import (
    ARTIFACTS,
    SLOW_MACHINE_TIMEOUT,
    WRITTEN,
    Environment,
    Platform,
    assert_environment_materialized,
    wait_until,
)

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = ARTIFACTS / "prefect-ui-custom-run.png"
# The closed network refuses Chromium's own traffic; these flags keep it from trying.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
FINAL_BADGES = {"Completed", "Failed", "Crashed", "Cancelled"}

pytestmark = [pytest.mark.e2e, SLOW_MACHINE_TIMEOUT]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # `make test` installs them (tests/system-tools.sh); a missing browser is a failure.
    for binary in (CHROMIUM, CHROMEDRIVER):
        assert binary.exists(), f"{binary} is missing: run tests/system-tools.sh (Debian's "
        "chromium and chromium-driver)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()  # stops Chromium and chromedriver


class PrefectUI:
    """The few moves a user makes in the Prefect UI, done the way a patient user does:
    menus and toasts slide in, so a click that lands on something still moving is tried
    again, and a Submit the server refused (its SQLite can answer "database is locked"
    under load; the UI then shows an error toast) is submitted again."""

    SUBMIT = "//button[normalize-space()='Submit']"
    REFUSED = (
        "//*[contains(@class, 'p-toast__message')]"
        "[contains(normalize-space(), 'Something went wrong trying to create a flow run')]"
    )
    RUN_STATE = "header.page-heading-flow-run .state-badge"

    def __init__(self, driver: WebDriver, base_url: str) -> None:
        from selenium.common.exceptions import (
            ElementClickInterceptedException,
            StaleElementReferenceException,
        )
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.base_url = base_url
        self.wait = WebDriverWait(
            driver,
            60,
            ignored_exceptions=[ElementClickInterceptedException, StaleElementReferenceException],
        )

    def open(self, path: str) -> None:
        self.driver.get(f"{self.base_url}{path}")

    def click(self, xpath: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        def clicked(driver: WebDriver) -> bool:
            element = ec.element_to_be_clickable((By.XPATH, xpath))(driver)
            if element is False:
                return False
            element.click()
            return True

        self.wait.until(clicked)

    def fill(self, label: str, text: str) -> None:
        """Type into the form field under a parameter's label."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        field = self.wait.until(
            ec.visibility_of_element_located(
                (
                    By.XPATH,
                    f"//span[normalize-space()='{label}']/ancestor::div["
                    "contains(concat(' ', @class, ' '), ' schema-form-property ')][1]//textarea",
                )
            )
        )
        field.send_keys(text)

    def submit_run_form(self, attempts: int = 3) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        def on_form() -> bool:
            return self.driver.current_url.split("?")[0].endswith("/run")

        for _ in range(attempts):
            refusals = len(self.driver.find_elements(By.XPATH, self.REFUSED))

            def outcome(driver: WebDriver, before: int = refusals) -> str | None:
                if not on_form():
                    return "created"
                if len(driver.find_elements(By.XPATH, self.REFUSED)) > before:
                    return "refused"
                return None

            self.click(self.SUBMIT)
            if WebDriverWait(self.driver, 60).until(outcome) == "created":
                return
        raise AssertionError(f"the Prefect server refused the run {attempts} times")

    def settle(self, text: str, timeout: float) -> None:
        """Give the page a moment to show ``text`` (best effort: no failure if it doesn't)."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        xpath = f"//*[contains(normalize-space(text()), '{text}')]"
        with contextlib.suppress(TimeoutException):
            WebDriverWait(self.driver, timeout).until(lambda d: d.find_elements(By.XPATH, xpath))

    def run_state(self, timeout: float) -> str:
        """Wait on a flow run's page until its state badge shows a final state."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        def final(driver: WebDriver) -> str | None:
            badges = driver.find_elements(By.CSS_SELECTOR, self.RUN_STATE)
            text = badges[0].text.strip() if badges else ""
            return text if text in FINAL_BADGES else None

        return str(WebDriverWait(self.driver, timeout, poll_frequency=1).until(final))


def test_custom_run_from_the_prefect_ui_completes(
    platform: Platform, environment: Environment, browser: WebDriver
) -> None:
    env_id = environment.environment_id
    deployment = platform.deployment(WORKFLOW_APPENV_PROVISIONING)
    by_deployment = DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
    earlier = {run.id for run in platform.prefect.read_flow_runs(deployment_filter=by_deployment)}
    ui = PrefectUI(browser, platform.stack.prefect_ui_url)

    def new_runs() -> list[FlowRun] | None:
        runs = platform.prefect.read_flow_runs(deployment_filter=by_deployment)
        return [r for r in runs if r.id not in earlier] or None

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        ui.open("/deployments")
        ui.click(
            f"//tr[.//*[normalize-space()='{WORKFLOW_APPENV_PROVISIONING}']]"
            "//a[contains(@href, '/deployments/deployment/')]"
        )
        ui.click("//button[normalize-space()='Run']")
        ui.click("//button[normalize-space()='Custom run']")
        ui.fill("Environment Id", env_id)
        ui.submit_run_form()
        [run] = wait_until(new_runs, timeout=30, what="the run submitted from the UI")
        ui.click(f"//a[contains(@href, '/runs/flow-run/{run.id}')]")  # in the run list
        badge = ui.run_state(timeout=180)
        ui.settle("Finished in state", timeout=15)  # the run's own logs, for the screenshot
        browser.save_screenshot(str(SCREENSHOT))
        WRITTEN.append(SCREENSHOT)
    except Exception:
        failure = ARTIFACTS / "prefect-ui-failure.png"
        browser.save_screenshot(str(failure))
        WRITTEN.append(failure)
        raise

    assert badge == "Completed", platform.worker_log()
    assert str(run.id) in browser.current_url
    run = platform.prefect.read_flow_run(run.id)
    assert run.state_type is StateType.COMPLETED
    assert run.parameters == {"request": {"environment_id": env_id, "keep_partial": False}}
    assert run.name == f"provision-{env_id}"  # the flow's run name, set when it started
    assert platform.get(f"/api/v1/environments/{env_id}")["status"] == "provisioned"
    assert_environment_materialized(platform, env_id)
