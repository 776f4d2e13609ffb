// The jobs dashboard's only script: refresh the overview in place, confirm destructive forms.
"use strict";

function refreshInPlace(box) {
  const url = box.dataset.refreshUrl;
  const seconds = Math.max(1, Number(box.dataset.refreshSeconds) || 5);
  const tick = async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.ok) {
        // server-rendered, escaped HTML from the same origin; scripts in it never run
        box.innerHTML = await response.text();
        box.dataset.refreshedAt = new Date().toISOString();
        box.classList.remove("stale");
      } else {
        box.classList.add("stale");
      }
    } catch (error) {
      box.classList.add("stale");
    }
    window.setTimeout(tick, seconds * 1000);
  };
  window.setTimeout(tick, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh-url]").forEach(refreshInPlace);
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  });
});
