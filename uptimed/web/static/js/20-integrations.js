// The integrations page: the "Add integration" dialog shows only the chosen
// type's fields, and "Send test" shows its result on the card in place.
"use strict";
(function () {
  const uptimed = window.uptimed;

  // Only the chosen type's fieldset is shown, and only its fields are sent.
  function showChosen(select) {
    const form = select.form;
    form.querySelectorAll("fieldset[data-channel]").forEach((fieldset) => {
      const other = fieldset.dataset.channel !== select.value;
      fieldset.hidden = other;
      fieldset.disabled = other;
    });
    form.querySelectorAll("[data-without-js]").forEach((element) => { element.hidden = true; });
  }

  function openModal(dialog) {
    if (dialog.open) dialog.close();  // shown in place by the server (no script): make it modal
    dialog.showModal();
    const invalid = dialog.querySelector('[aria-invalid="true"]:not([disabled])');
    if (invalid) invalid.focus();
  }

  // <form data-opens-dialog="id">: without the script it loads the page with the dialog open.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.dataset.opensDialog) {
      const dialog = document.getElementById(form.dataset.opensDialog);
      if (!dialog) return;
      event.preventDefault();
      openModal(dialog);
    } else if (form.dataset.testSend !== undefined) {
      event.preventDefault();
      sendTest(form);
    }
  });

  document.addEventListener("change", (event) => {
    if (event.target.matches("select[data-channel-select]")) showChosen(event.target);
  });

  function describe(outcome) {
    return outcome.status === "sent" ? "✓ Test delivered" : "✕ Failed: " + (outcome.error || "no reason given");
  }

  async function sendTest(form) {
    const button = form.querySelector("button");
    const result = document.getElementById(form.dataset.result);
    button.disabled = true;
    result.className = "test-result result-pending";
    result.textContent = "Sending a test…";
    let outcome;
    try {
      const response = await uptimed.request(form.action, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(form)),
      });
      const type = response.headers.get("Content-Type") || "";
      outcome = response.ok && type.startsWith("application/json")
        ? await response.json()
        : { status: "failed", error: "the page answered HTTP " + response.status + "; reload it and try again" };
    } catch (error) {
      outcome = { status: "failed", error: "uptimed could not be reached (" + error.message + ")" };
    } finally {
      button.disabled = false;
    }
    result.className = "test-result result-" + (outcome.status === "sent" ? "sent" : "failed");
    result.textContent = describe(outcome);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("select[data-channel-select]").forEach(showChosen);
    document.querySelectorAll("dialog[data-open-on-load]").forEach(openModal);
  });
})();
