/// The bucket's workflows with their latest runs, and one run with its tasks.
enum WorkflowTemplates {
    static let workflows = """
        {{<layout}}{{$content}}
        {{#workflows}}
        <section class="card workflow" data-workflow-id="{{id}}">
          <h2>{{name}} <span class="state state-{{state}}">{{state}}</span></h2>
          <p class="mono">{{id}} · objects under <code>{{prefix}}</code> · nodes {{nodes}}</p>
          <table class="grid runs">
            <thead><tr><th>RunId</th><th>State</th><th>Object</th><th>Started</th><th>Ended</th><th>Tasks</th></tr></thead>
            <tbody>
            {{#runs}}
            <tr data-run-id="{{id}}"><td class="mono"><a href="/console/b/{{page.bucket}}/runs/{{id}}">{{id}}</a></td>
              <td><span class="state state-{{state}}">{{state}}</span></td><td class="mono">{{object}}</td><td>{{created}}</td><td>{{ended}}</td>
              <td>{{tasks}}</td></tr>
            {{/runs}}
            {{^runs}}<tr><td colspan="6" class="empty">No run yet.</td></tr>{{/runs}}
            </tbody>
          </table>
        </section>
        {{/workflows}}
        {{^workflows}}<p class="empty" id="no-workflows">This bucket has no workflow. Create one with CI's POST /workflow (ci_create_workflow).</p>{{/workflows}}
        {{/content}}{{/layout}}
        """

    static let run = """
        {{<layout}}{{$content}}
        <section class="card" id="run">
          <dl class="facts">
            <dt>RunId</dt><dd class="mono">{{run.id}}</dd>
            <dt>Workflow</dt><dd>{{run.workflowName}} <span class="mono">{{run.workflowID}}</span></dd>
            <dt>State</dt><dd><span class="state state-{{run.state}}" id="run-state">{{run.state}}</span></dd>
            <dt>Object</dt><dd class="mono">{{run.object}}</dd>
            <dt>Started</dt><dd>{{run.created}}</dd>
            <dt>Ended</dt><dd>{{run.ended}}</dd>
          </dl>
        </section>
        <h2>Tasks</h2>
        <table class="grid" id="tasks">
          <thead><tr><th>Node</th><th>Type</th><th>State</th><th>Job</th><th>Template</th><th>Started</th><th>Ended</th><th>Code</th><th>Message</th></tr></thead>
          <tbody>
          {{#tasks}}
          <tr data-node="{{name}}"><td>{{name}}</td><td>{{type}}</td><td><span class="state state-{{state}}">{{state}}</span></td>
            <td class="mono">{{#jobID}}<a href="/console/b/{{page.bucket}}/jobs/{{jobID}}">{{jobID}}</a>{{/jobID}}{{^jobID}}-{{/jobID}}</td>
            <td>{{template}}</td><td>{{started}}</td><td>{{ended}}</td><td>{{code}}</td><td>{{message}}</td></tr>
          {{/tasks}}
          </tbody>
        </table>
        {{/content}}{{/layout}}
        """
}
