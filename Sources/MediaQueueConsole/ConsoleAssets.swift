/// The console's style sheet and its one script: plain CSS and JavaScript, no build step.
enum ConsoleAssets {
    static let css = """
        :root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --accent: #006edc; --bad: #c62828; --good: #2e7d32; --warn: #b26a00; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #f5f7fa; }
        header.top { display: flex; flex-wrap: wrap; gap: 16px; align-items: center; padding: 10px 20px; background: #102a43; color: #fff; }
        header.top a { color: #d9e2ec; text-decoration: none; }
        header.top a.brand { font-weight: 700; color: #fff; font-size: 16px; }
        header.top nav { display: flex; gap: 14px; }
        header.top nav a.active { color: #fff; border-bottom: 2px solid #9fb3c8; }
        header.top .signout { margin-left: auto; }
        header.top select { font: inherit; }
        button.link { background: none; border: none; color: #d9e2ec; cursor: pointer; text-decoration: underline; padding: 0; }
        main { padding: 16px 20px 40px; max-width: 1400px; }
        h1 { font-size: 20px; margin: 4px 0 14px; }
        h2 { font-size: 16px; margin: 22px 0 8px; }
        table.grid { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
        table.grid th, table.grid td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: middle; }
        table.grid th { background: #f0f4f8; font-weight: 600; }
        td.empty, li.empty { color: var(--muted); font-style: italic; }
        .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12px; }
        .operation { white-space: nowrap; }
        .operation form { display: inline; }
        button, a.button { display: inline-block; font: inherit; padding: 4px 10px; border: 1px solid var(--accent); border-radius: 4px;
          background: #fff; color: var(--accent); cursor: pointer; text-decoration: none; }
        button:hover, a.button:hover { background: var(--accent); color: #fff; }
        .card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; margin-bottom: 16px; max-width: 720px; }
        .card label, .filters label { display: inline-block; margin: 4px 12px 4px 0; }
        .card fieldset { border: 1px solid var(--line); margin: 8px 0; }
        .filters { margin-bottom: 12px; }
        .login { max-width: 420px; }
        .login label { display: block; }
        .login input { width: 100%; }
        .or { color: var(--muted); margin: 4px 0; }
        .field-error, .failure { color: var(--bad); font-weight: 600; }
        .field-error { display: block; margin: 0 0 6px; }
        .notice { color: var(--good); font-weight: 600; }
        .hint { color: var(--muted); }
        .state { padding: 1px 6px; border-radius: 3px; background: #e4e7eb; }
        .state-Active, .state-Success { background: #e3f9e5; color: var(--good); }
        .state-Paused, .state-Pause { background: #fff3c4; color: var(--warn); }
        .state-Failed { background: #ffe3e3; color: var(--bad); }
        .state-Running { background: #dceefb; color: var(--accent); }
        .delivery-dead { color: var(--bad); font-weight: 600; }
        .delivery-delivered { color: var(--good); }
        progress { width: 240px; vertical-align: middle; }
        dl.facts { display: grid; grid-template-columns: 120px 1fr; gap: 2px 12px; }
        dl.facts dt { color: var(--muted); }
        dl.facts dd { margin: 0; }
        pre.document { background: #fff; border: 1px solid var(--line); padding: 10px; overflow: auto; max-height: 420px; font-size: 12px; }
        .tiles { display: flex; gap: 12px; flex-wrap: wrap; }
        .tile { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 16px; min-width: 110px; }
        .tile .count { display: block; font-size: 22px; font-weight: 700; }
        .tile .label { color: var(--muted); }
        svg.chart { width: 100%; max-width: 900px; height: 120px; background: #fff; border: 1px solid var(--line); }
        svg.chart rect { fill: var(--accent); }
        """

    /// Switches buckets from the picker, and updates a running job's progress bar and state
    /// without a reload (reloading once when the job ends, so its outputs and callbacks show).
    static let javascript = """
        (function () {
          var picker = document.getElementById('bucket-picker');
          if (picker) picker.addEventListener('change', function () { picker.form.submit(); });
        })();
        (function () {
          var section = document.getElementById('job');
          if (!section || section.dataset.live !== 'true') return;
          var bar = document.getElementById('progress-bar');
          var text = document.getElementById('progress-text');
          var state = document.getElementById('job-state');
          function poll() {
            fetch(section.dataset.progressUrl, { credentials: 'same-origin', cache: 'no-store' })
              .then(function (response) {
                // A session that ended answers with the sign-in page: show it, and stop asking.
                if (response.redirected) { location.reload(); return 'reloading'; }
                return response.ok ? response.json() : null;
              })
              .then(function (job) {
                if (job === 'reloading') return;
                if (!job) { setTimeout(poll, 2000); return; }
                bar.value = job.progress;
                text.textContent = job.progress + '%';
                state.textContent = job.state;
                state.className = 'state state-' + job.state;
                if (job.ended) { location.reload(); } else { setTimeout(poll, 1000); }
              })
              .catch(function () { setTimeout(poll, 2000); });
          }
          setTimeout(poll, 1000);
        })();
        """
}
