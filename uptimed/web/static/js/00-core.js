// uptimed's script: pages work without it; with it they refresh in place,
// confirm before deleting, and send forms without a full reload where marked.
"use strict";
(function () {
  const uptimed = (window.uptimed = {});
  const meta = document.querySelector('meta[name="csrf-token"]');
  uptimed.csrf = meta ? meta.content : "";

  // The browser's time zone, for pages to show times in when the viewer chose none (Preferences).
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && !document.cookie.split("; ").includes("uptimed_tz=" + encodeURIComponent(zone))) {
      document.cookie = "uptimed_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
    }
  } catch (error) {
    // no Intl time zone: times stay in UTC
  }

  // fetch() with the session's CSRF token; a 401 means the session ended.
  uptimed.request = async function (url, options = {}) {
    const headers = Object.assign({ "X-Uptimed-Fetch": "1" }, options.headers || {});
    if ((options.method || "GET") !== "GET") headers["X-CSRF-Token"] = uptimed.csrf;
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options, { headers }));
    if (response.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
      throw new Error("signed out");
    }
    return response;
  };

  // <div data-refresh="/partials/x" data-refresh-every="10">: replaced by a fresh copy every N seconds.
  function refresh(element) {
    const every = Math.max(1, Number(element.dataset.refreshEvery || 10)) * 1000;
    async function tick() {
      if (!document.hidden && !element.contains(document.activeElement)) {
        try {
          const response = await uptimed.request(element.dataset.refresh);
          if (response.ok) {
            element.innerHTML = await response.text();
            element.dataset.refreshedAt = new Date().toISOString();
            element.dispatchEvent(new CustomEvent("uptimed:refreshed", { bubbles: true }));
          }
        } catch (error) {
          // offline for a moment: keep what is shown and try again next tick
        }
      }
      setTimeout(tick, every);
    }
    setTimeout(tick, every);
  }

  // <form data-confirm="Delete X?">: asks in a dialog first; Cancel is the default button.
  // Delegated, so forms inside refreshed parts of the page are covered too.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    if (form.dataset.confirmed === "yes") {
      delete form.dataset.confirmed;
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
    const dialog = document.getElementById("confirm-dialog");
    dialog.querySelector("#confirm-message").textContent = form.dataset.confirm;
    dialog.querySelector("#confirm-yes").textContent = form.dataset.confirmButton || "Delete";
    dialog.returnValue = "";
    dialog.addEventListener("close", function onClose() {
      if (dialog.returnValue === "confirm") {
        form.dataset.confirmed = "yes";
        form.requestSubmit();
      }
    }, { once: true });
    dialog.showModal();
  }, true);

  // Buttons that open and close <dialog> elements.
  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog) dialog.showModal();
      return;
    }
    const closer = event.target.closest("[data-close-dialog]");
    if (closer) closer.closest("dialog").close();
  });

  uptimed.enhance = function (root) {
    root.querySelectorAll("[data-refresh]").forEach(refresh);
    // <a href="/path" data-show-full-url>: show the address as the browser reached it (through any proxy).
    root.querySelectorAll("a[data-show-full-url]").forEach((link) => { link.textContent = link.href; });
  };

  document.addEventListener("DOMContentLoaded", () => uptimed.enhance(document));
})();
