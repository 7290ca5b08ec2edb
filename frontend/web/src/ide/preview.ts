// Preview: the ports listening inside the workspace, each shown in an
// iframe pane beside the editor (or in a new browser tab).

import { Api, PortInfo } from "./api";
import { element, errorMessage, required } from "./ui";

export class Preview {
  private readonly button = required<HTMLButtonElement>("[data-action=preview]");
  private readonly menu = required("#preview-menu");
  private readonly pane = required("#preview-pane");
  private readonly splitter = required("[data-split=preview]");
  private readonly frame = required<HTMLIFrameElement>("#preview-frame");
  private readonly title = required("#preview-title");
  private readonly openLink = required<HTMLAnchorElement>("#preview-open");

  constructor(private readonly api: Api) {
    this.button.addEventListener("click", () => {
      if (this.menu.hidden) void this.showMenu();
      else this.hideMenu();
    });
    document.addEventListener("pointerdown", (event) => {
      const target = event.target as Node;
      if (!this.menu.hidden && !this.menu.contains(target) && !this.button.contains(target)) this.hideMenu();
    });
    this.menu.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        this.hideMenu();
        this.button.focus();
      }
    });
    required("[data-action=preview-close]").addEventListener("click", () => this.close());
    required("[data-action=preview-reload]").addEventListener("click", () => this.reload());
  }

  private async showMenu(): Promise<void> {
    this.menu.replaceChildren(element("p", { class: "muted" }, "Looking for listening ports…"));
    this.menu.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    let ports: PortInfo[];
    try {
      ports = await this.api.ports();
    } catch (error) {
      this.menu.replaceChildren(element("p", { class: "error-text" }, errorMessage(error)));
      return;
    }
    if (ports.length === 0) {
      this.menu.replaceChildren(
        element("p", { class: "muted" }, "Nothing is listening yet. Start a server in a terminal (on 0.0.0.0 or localhost), then try again."),
      );
      return;
    }
    this.menu.replaceChildren(
      ...ports
        .sort((a, b) => a.port - b.port)
        .map((port) => {
          const item = element("button", { type: "button", role: "menuitem", "data-port": String(port.port) }, `Port ${port.port}`);
          item.addEventListener("click", () => {
            this.hideMenu();
            this.open(port);
          });
          return item;
        }),
    );
    this.menu.querySelector<HTMLButtonElement>("button")?.focus();
  }

  private hideMenu(): void {
    this.menu.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
  }

  open(port: PortInfo): void {
    this.pane.hidden = false;
    this.splitter.hidden = false;
    this.pane.dataset.port = String(port.port);
    this.title.textContent = `Preview · port ${port.port}`;
    this.openLink.href = port.url;
    this.frame.src = port.url;
  }

  close(): void {
    this.pane.hidden = true;
    this.splitter.hidden = true;
    delete this.pane.dataset.port;
    this.frame.src = "about:blank";
  }

  reload(): void {
    const url = this.openLink.getAttribute("href");
    if (url && url !== "#") this.frame.src = url;
  }
}
