/// The jobs list with its filters, and one job's detail with a live progress bar.
enum JobTemplates {
    static let jobs = """
        {{<layout}}{{$content}}
        <form class="filters" method="get" action="/console/b/{{page.bucket}}/jobs" id="job-filters">
          <label>Queue <select name="queue" id="filter-queue"><option value="">any</option>
            {{#filters.queues}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/filters.queues}}</select></label>
          <label>Tag <select name="tag" id="filter-tag"><option value="">any</option>
            {{#filters.tags}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/filters.tags}}</select></label>
          <label>State <select name="state" id="filter-state"><option value="">any</option>
            {{#filters.states}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/filters.states}}</select></label>
          <label>Submitted from <input type="datetime-local" name="from" id="filter-from" value="{{filters.from}}"></label>
          <label>to <input type="datetime-local" name="to" id="filter-to" value="{{filters.to}}"></label>
          <label>JobId <input name="jobId" id="filter-jobId" value="{{filters.jobID}}" size="34"></label>
          <button id="apply-filters">Filter</button>
        </form>
        <table class="grid" id="jobs">
          <thead><tr><th>JobId</th><th>Tag</th><th>State</th><th>Progress</th><th>JobLevel</th><th>Queue</th><th>Submitted</th><th>Ended</th><th></th></tr></thead>
          <tbody>
          {{#jobs}}
          <tr data-job-id="{{id}}">
            <td class="mono"><a href="/console/b/{{page.bucket}}/jobs/{{id}}">{{id}}</a></td>
            <td>{{tag}}</td><td><span class="state state-{{state}}">{{state}}</span></td><td>{{progress}}%</td><td>{{level}}</td>
            <td class="mono">{{queueName}}</td><td>{{created}}</td><td>{{ended}}</td>
            <td>{{#cancellable}}<form method="post" action="/console/b/{{page.bucket}}/jobs/{{id}}/cancel">
              <input type="hidden" name="csrf" value="{{page.csrf}}"><input type="hidden" name="back" value="{{back}}"><button>Cancel</button></form>{{/cancellable}}</td>
          </tr>
          {{/jobs}}
          {{^jobs}}<tr><td colspan="9" class="empty">No job matches.</td></tr>{{/jobs}}
          </tbody>
        </table>
        {{#nextPage}}<p><a class="button" id="next-page" href="{{nextPage}}">Next page</a></p>{{/nextPage}}
        {{/content}}{{/layout}}
        """

    static let job = """
        {{<layout}}{{$content}}
        <section class="card" id="job" data-progress-url="/console/b/{{page.bucket}}/jobs/{{job.id}}/progress" data-live="{{job.live}}">
          <p>State <span class="state state-{{job.state}}" id="job-state">{{job.state}}</span>
            <progress id="progress-bar" max="100" value="{{job.progress}}"></progress> <span id="progress-text">{{job.progress}}%</span></p>
          <dl class="facts">
            <dt>JobId</dt><dd class="mono">{{job.id}}</dd>
            <dt>Tag</dt><dd>{{job.tag}}</dd>
            <dt>Queue</dt><dd class="mono">{{job.queueID}}</dd>
            <dt>JobLevel</dt><dd>{{job.level}}</dd>
            <dt>Submitted</dt><dd>{{job.created}}</dd>
            <dt>Started</dt><dd>{{job.started}}</dd>
            <dt>Ended</dt><dd>{{job.ended}}</dd>
            <dt>Code</dt><dd id="job-code">{{job.code}}</dd>
            <dt>Message</dt><dd id="job-message">{{job.message}}</dd>
          </dl>
          {{#job.cancellable}}<form method="post" action="/console/b/{{page.bucket}}/jobs/{{job.id}}/cancel">
            <input type="hidden" name="csrf" value="{{page.csrf}}"><input type="hidden" name="back" value="{{job.back}}">
            <button id="cancel-job">Cancel</button></form>{{/job.cancellable}}
        </section>
        <h2>Outputs</h2>
        <ul id="outputs">
          {{#outputs}}<li><a href="/console/b/{{page.bucket}}/objects?key={{encodedKey}}" download>{{key}}</a></li>{{/outputs}}
          {{^outputs}}<li class="empty">No output yet.</li>{{/outputs}}
        </ul>
        <h2>Callback deliveries</h2>
        <table class="grid" id="deliveries">
          <thead><tr><th>Event id</th><th>To</th><th>Status</th><th>Attempts</th><th>Last error</th><th>Next attempt</th><th>Delivered</th></tr></thead>
          <tbody>
          {{#deliveries}}
          <tr><td class="mono">{{id}}</td><td class="mono">{{target}}</td><td><span class="delivery-{{status}}">{{status}}</span></td><td>{{attempts}}</td>
            <td>{{lastError}}</td><td>{{nextAttempt}}</td><td>{{deliveredAt}}</td></tr>
          {{/deliveries}}
          {{^deliveries}}<tr><td colspan="7" class="empty">No callback for this job (yet).</td></tr>{{/deliveries}}
          </tbody>
        </table>
        <h2>JobsDetail</h2>
        <pre class="document" id="jobs-detail">{{detail}}</pre>
        {{/content}}{{/layout}}
        """
}
