// The preview page: toggles kept in the URL hash and localStorage, and live updates.
(function () {
  "use strict";

  var CHOICES = { width: ["mobile", "desktop"], scheme: ["light", "dark"], part: ["html", "text"] };
  var STORE = "newsletter-preview";
  var body = document.body;
  var live = body.getAttribute("data-live") === "1";
  var lightDoc = null;
  var state = readState();

  function readState() {
    var chosen = { width: "mobile", scheme: "light", part: "html" };
    var saved = {};
    try {
      saved = JSON.parse(window.localStorage.getItem(STORE) || "{}") || {};
    } catch (err) {
      saved = {};
    }
    var hash = new URLSearchParams(window.location.hash.slice(1));
    Object.keys(CHOICES).forEach(function (key) {
      var value = hash.get(key) || saved[key];
      if (CHOICES[key].indexOf(value) >= 0) {
        chosen[key] = value;
      }
    });
    return chosen;
  }

  function saveState() {
    try {
      window.localStorage.setItem(STORE, JSON.stringify(state));
    } catch (err) {
      // storage may be off (private windows, file pages); the hash still keeps the state
    }
    var hash = "#" + new URLSearchParams(state).toString();
    if (window.location.hash !== hash) {
      window.history.replaceState(null, "", hash);
    }
  }

  function wanted(frame) {
    var dark = state.scheme === "dark";
    if (live) {
      return { name: "src", value: frame.getAttribute(dark ? "data-src-dark" : "data-src-light") };
    }
    if (lightDoc === null) {
      lightDoc = frame.getAttribute("srcdoc") || "";
    }
    return { name: "srcdoc", value: dark ? frame.getAttribute("data-srcdoc-dark") : lightDoc };
  }

  // A frame whose first load is under way may ignore a new src: replace the element instead.
  function updateFrame(frame) {
    if (!frame) {
      return;
    }
    var want = wanted(frame);
    if (want.value === null || frame.getAttribute(want.name) === want.value) {
      return;
    }
    if (!frame.isConnected) {
      frame.setAttribute(want.name, want.value);
      return;
    }
    var fresh = frame.cloneNode(false);
    fresh.setAttribute(want.name, want.value);
    frame.replaceWith(fresh);
  }

  function apply() {
    Object.keys(CHOICES).forEach(function (key) {
      body.setAttribute("data-" + key, state[key]);
    });
    var buttons = document.querySelectorAll("button[data-key]");
    Array.prototype.forEach.call(buttons, function (button) {
      var on = state[button.getAttribute("data-key")] === button.getAttribute("data-value");
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
    updateFrame(document.getElementById("email-frame"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-key]") : null;
    if (!button) {
      return;
    }
    var key = button.getAttribute("data-key");
    var value = button.getAttribute("data-value");
    if (CHOICES[key] && CHOICES[key].indexOf(value) >= 0) {
      state[key] = value;
      saveState();
      apply();
    }
  });

  window.addEventListener("hashchange", function () {
    state = readState();
    apply();
  });

  apply();

  if (!live) {
    return;
  }

  var status = document.getElementById("live-status");
  var busy = false;
  var pending = false;

  function say(text, stale) {
    if (status) {
      status.textContent = text;
      status.classList.toggle("stale", Boolean(stale));
    }
  }

  function currentVersion() {
    var panels = document.getElementById("panels");
    return panels ? panels.getAttribute("data-version") : "";
  }

  function refresh() {
    if (busy) {
      pending = true;
      return;
    }
    busy = true;
    fetch("/panels" + window.location.search, { cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (text) {
        var holder = document.createElement("template");
        holder.innerHTML = text;
        var next = holder.content.getElementById("panels");
        var old = document.getElementById("panels");
        if (!next || !old) {
          return;
        }
        var focused = document.activeElement && old.contains(document.activeElement)
          ? document.activeElement.id : "";
        updateFrame(next.querySelector("#email-frame"));
        old.replaceWith(next);
        document.title = next.getAttribute("data-title") || document.title;
        if (focused && document.getElementById(focused)) {
          document.getElementById(focused).focus();
        }
        var problem = next.classList.contains("state-problem");
        say((problem ? "Problem found at " : "Updated at ") + new Date().toLocaleTimeString(), false);
      })
      .catch(function (err) {
        say("Could not update: " + err.message, true);
      })
      .then(function () {
        busy = false;
        if (pending) {
          pending = false;
          refresh();
        }
      });
  }

  var events = new EventSource("/events");
  events.addEventListener("version", function (event) {
    if (status && status.classList.contains("stale")) {
      say("Live: reconnected", false);
    } else if (status && status.textContent === "Connecting…") {
      say("Live: watching for changes", false);
    }
    if (event.data !== currentVersion()) {
      refresh();
    }
  });
  events.addEventListener("error", function () {
    say("Disconnected from the preview server; retrying…", true);
  });
})();
