// Nubo's page islands. Every page works without this script; it only adds
// conveniences: the theme switch, copy buttons, confirmations before
// destructive actions, relative times, a reset link's code, the live log of a running build and
// the live statuses of a running batch and the live pipeline view.

import { setupBatchPage } from "./builds/batch";
import { setupBuildLog } from "./builds/live";
import { setupHighlighting } from "./highlight";
import { setupLiveExecution } from "./pipelines";

type Theme = "auto" | "light" | "dark";
const THEME_KEY = "nubo.theme";

function applyTheme(theme: Theme): void {
  const root = document.documentElement;
  if (theme === "auto") {
    root.removeAttribute("data-theme");
  } else {
    root.setAttribute("data-theme", theme);
  }
  const label = document.querySelector<HTMLElement>("[data-theme-label]");
  if (label) label.textContent = theme;
}

function storedTheme(): Theme {
  const value = localStorage.getItem(THEME_KEY);
  return value === "light" || value === "dark" ? value : "auto";
}

function setupThemeToggle(): void {
  applyTheme(storedTheme());
  for (const button of document.querySelectorAll<HTMLButtonElement>("[data-theme-toggle]")) {
    button.hidden = false;
    button.addEventListener("click", () => {
      const order: Theme[] = ["auto", "light", "dark"];
      const next = order[(order.indexOf(storedTheme()) + 1) % order.length];
      if (next === "auto") localStorage.removeItem(THEME_KEY);
      else localStorage.setItem(THEME_KEY, next);
      applyTheme(next);
    });
  }
}

function setupCopyButtons(): void {
  for (const button of document.querySelectorAll<HTMLButtonElement>("[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const target = document.getElementById(button.dataset.copy ?? "");
      const text = target?.textContent ?? "";
      try {
        await navigator.clipboard.writeText(text.trim());
        flashLabel(button, "Copied");
      } catch {
        flashLabel(button, "Select and copy");
      }
    });
  }
}

function flashLabel(button: HTMLButtonElement, text: string): void {
  const original = button.textContent;
  button.textContent = text;
  window.setTimeout(() => (button.textContent = original), 1500);
}

function setupConfirmations(scope: ParentNode = document): void {
  for (const form of scope.querySelectorAll<HTMLFormElement>("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm ?? "Are you sure?")) event.preventDefault();
    });
  }
}

export function relativeTime(thenMs: number, nowMs: number): string {
  const seconds = Math.round((nowMs - thenMs) / 1000);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 36) return `${hours} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}

function setupRelativeTimes(scope: ParentNode = document): void {
  for (const el of scope.querySelectorAll<HTMLTimeElement>("time[data-relative]")) {
    const ms = Date.parse(el.dateTime);
    if (!Number.isNaN(ms)) {
      el.title = el.textContent ?? "";
      el.textContent = relativeTime(ms, Date.now());
    }
  }
}

/** The browser's "Please match the requested format" says no rule: an
 *  input's `title` states it, and becomes the message. */
function setupValidationMessages(): void {
  document.addEventListener(
    "invalid",
    (event) => {
      const input = event.target;
      if (!(input instanceof HTMLInputElement) || !input.title) return;
      if (input.validity.patternMismatch || input.validity.tooLong || input.validity.tooShort) {
        input.setCustomValidity(input.title);
      }
    },
    true,
  );
  document.addEventListener("input", (event) => {
    if (event.target instanceof HTMLInputElement) event.target.setCustomValidity("");
  });
}

/** A reset link carries its code after `#`, which is never sent to the
 *  server: copy it into the form, then drop it from the address bar. */
function setupFillFromHash(): void {
  const code = window.location.hash.slice(1);
  const inputs = document.querySelectorAll<HTMLInputElement>("input[data-fill-from-hash]");
  if (!code || inputs.length === 0) return;
  for (const input of inputs) {
    if (!input.value) input.value = decodeURIComponent(code);
  }
  history.replaceState(null, "", window.location.pathname + window.location.search);
}

document.addEventListener("DOMContentLoaded", () => {
  setupFillFromHash();
  setupThemeToggle();
  setupValidationMessages();
  setupCopyButtons();
  setupConfirmations();
  setupRelativeTimes();
  setupHighlighting();
  setupBuildLog((root) => setupRelativeTimes(root));
  setupBatchPage((root) => setupRelativeTimes(root));
  setupLiveExecution((root) => {
    setupRelativeTimes(root);
    setupConfirmations(root);
  });
  document.documentElement.dataset.islands = "ready";
});
