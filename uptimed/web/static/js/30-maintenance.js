// The maintenance form: only the fields of the kind chosen (once, weekly, cron) are shown.
// Without the script every field shows, and only the chosen kind's are read.
"use strict";
(function () {
  function showKind(form) {
    const chosen = form.querySelector('input[name="kind"]:checked');
    if (!chosen) return;
    form.querySelectorAll("[data-kind]").forEach((element) => {
      element.hidden = !element.dataset.kind.split(" ").includes(chosen.value);
    });
  }

  document.addEventListener("change", (event) => {
    if (event.target.matches('input[name="kind"]')) showKind(event.target.form);
  });

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".maintenance-form form").forEach(showKind);
  });
})();
