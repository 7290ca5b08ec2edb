// Small pieces of IDE chrome shared by the panels: the prompt/confirm
// dialog, the context menu and the status bar.

/** An element the page must have; a missing one is a bug in the page. */
export function required<T extends HTMLElement = HTMLElement>(selector: string, root: ParentNode = document): T {
  const el = root.querySelector<T>(selector);
  if (!el) throw new Error(`IDE page is missing ${selector}`);
  return el;
}

export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  if (text !== undefined) el.textContent = text;
  return el;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface DialogOptions {
  message: string;
  /** Shows a text field with this initial value. */
  value?: string;
  ok?: string;
  danger?: boolean;
  /** Characters of `value` to select initially (default: all). */
  select?: [number, number];
}

/** The one modal dialog (#ide-dialog): a prompt or a confirmation. */
export class Dialog {
  private readonly dialog: HTMLDialogElement;
  private readonly message: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly ok: HTMLButtonElement;

  constructor() {
    this.dialog = required<HTMLDialogElement>("#ide-dialog");
    this.message = required("[data-dialog-message]", this.dialog);
    this.input = required<HTMLInputElement>("[data-dialog-input]", this.dialog);
    this.ok = required<HTMLButtonElement>("[data-dialog-ok]", this.dialog);
    // Enter in the field means OK (the form's first button is Cancel).
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.isComposing) {
        event.preventDefault();
        this.dialog.close("ok");
      }
    });
  }

  private show(options: DialogOptions): Promise<string | null> {
    this.message.textContent = options.message;
    const withInput = options.value !== undefined;
    this.input.hidden = !withInput;
    this.input.value = options.value ?? "";
    this.ok.textContent = options.ok ?? "OK";
    this.ok.classList.toggle("danger", options.danger === true);
    this.dialog.returnValue = "";
    return new Promise((resolve) => {
      const done = () => {
        this.dialog.removeEventListener("close", done);
        resolve(this.dialog.returnValue === "ok" ? this.input.value : null);
      };
      this.dialog.addEventListener("close", done);
      this.dialog.showModal();
      if (withInput) {
        this.input.focus();
        const [start, end] = options.select ?? [0, this.input.value.length];
        this.input.setSelectionRange(start, end);
      } else {
        this.ok.focus();
      }
    });
  }

  /** Asks for a text; null when cancelled or left empty. */
  async prompt(message: string, value = "", ok = "OK", select?: [number, number]): Promise<string | null> {
    const answer = await this.show({ message, value, ok, select });
    return answer === null || answer.trim() === "" ? null : answer.trim();
  }

  async confirm(message: string, ok = "OK", danger = false): Promise<boolean> {
    return (await this.show({ message, ok, danger })) !== null;
  }
}

export interface MenuItem {
  label: string;
  /** Becomes data-menu on the item, for tests and styling. */
  id: string;
  run: () => void;
  danger?: boolean;
}

/** The context menu (#context-menu), shown at a point. */
export class ContextMenu {
  private readonly menu: HTMLElement;

  constructor() {
    this.menu = required("#context-menu");
    document.addEventListener("pointerdown", (event) => {
      if (!this.menu.hidden && !this.menu.contains(event.target as Node)) this.close();
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.close();
    });
    window.addEventListener("blur", () => this.close());
    this.menu.addEventListener("keydown", (event) => this.onKey(event));
  }

  show(x: number, y: number, items: MenuItem[]): void {
    this.menu.replaceChildren(
      ...items.map((item) => {
        const li = element("li", { role: "none" });
        const button = element("button", { type: "button", role: "menuitem", "data-menu": item.id }, item.label);
        if (item.danger) button.classList.add("danger");
        button.addEventListener("click", () => {
          this.close();
          item.run();
        });
        li.append(button);
        return li;
      }),
    );
    this.menu.hidden = false;
    const { width, height } = this.menu.getBoundingClientRect();
    this.menu.style.left = `${Math.max(4, Math.min(x, window.innerWidth - width - 4))}px`;
    this.menu.style.top = `${Math.max(4, Math.min(y, window.innerHeight - height - 4))}px`;
    this.menu.querySelector<HTMLButtonElement>("button")?.focus();
  }

  close(): void {
    this.menu.hidden = true;
  }

  private onKey(event: KeyboardEvent): void {
    const buttons = [...this.menu.querySelectorAll<HTMLButtonElement>("button")];
    const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      buttons[(at + step + buttons.length) % buttons.length]?.focus();
    }
  }
}

/** The status bar at the bottom (#status-bar). */
export class StatusBar {
  private readonly branch = required("#status-branch");
  private readonly state = required("#status-state");
  private readonly message = required("#status-message");
  private readonly cursor = required("#status-cursor");
  private readonly language = required("#status-language");
  private readonly save = required("#status-save");
  private messageTimer = 0;

  setBranch(branch: string | null): void {
    this.branch.textContent = branch ? `⎇ ${branch}` : "";
    this.branch.dataset.branch = branch ?? "";
  }

  setState(state: string): void {
    this.state.textContent = state;
    this.state.dataset.state = state;
  }

  /** A transient message; errors stay longer. */
  show(text: string, kind: "info" | "error" = "info"): void {
    this.message.textContent = text;
    this.message.dataset.kind = kind;
    window.clearTimeout(this.messageTimer);
    this.messageTimer = window.setTimeout(() => {
      this.message.textContent = "";
      delete this.message.dataset.kind;
    }, kind === "error" ? 12_000 : 5_000);
  }

  error(error: unknown, context?: string): void {
    const text = errorMessage(error);
    this.show(context ? `${context}: ${text}` : text, "error");
  }

  setCursor(line: number | null, col = 0, selected = 0): void {
    if (line === null) {
      this.cursor.textContent = "";
      return;
    }
    this.cursor.textContent = selected > 0 ? `Ln ${line}, Col ${col} (${selected} selected)` : `Ln ${line}, Col ${col}`;
  }

  setLanguage(name: string): void {
    this.language.textContent = name;
  }

  setSave(text: string, state: "saved" | "dirty" | "saving" | "error" | "conflict" | "none"): void {
    this.save.textContent = text;
    this.save.dataset.save = state;
  }
}
