// The live pipeline view: while an execution runs, its part of the page
// (#execution, drawn by the server) is fetched again every second and
// swapped in, so stages and actions move without a reload. It stops when
// the execution ends, and waits while someone is typing an approval
// comment. Without this script the page still shows the state at load.

const POLL_MS = 1000;

export function setupLiveExecution(after: (root: HTMLElement) => void): void {
  const first = document.getElementById("execution");
  if (!first || first.dataset.live !== "yes") return;
  const holder = first.parentElement;
  const url = first.dataset.liveUrl;
  if (!holder || !url) return;
  let last = holder.innerHTML;
  const tick = async (): Promise<void> => {
    const typing = document.activeElement instanceof HTMLInputElement && holder.contains(document.activeElement) && document.activeElement.value !== "";
    if (!typing) {
      try {
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (response.ok) {
          const html = await response.text();
          if (html !== last) {
            holder.innerHTML = html;
            last = html;
            after(holder);
          }
        }
      } catch {
        // Offline for a moment: the next tick tries again.
      }
    }
    const current = document.getElementById("execution");
    if (current?.dataset.live === "yes") window.setTimeout(() => void tick(), POLL_MS);
  };
  window.setTimeout(() => void tick(), POLL_MS);
}
