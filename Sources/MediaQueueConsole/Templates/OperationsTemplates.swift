/// The overview and the dead callbacks.
enum OperationsTemplates {
    static let overview = """
        {{<layout}}{{$content}}
        <section class="tiles" id="states">
          {{#states}}<div class="tile"><span class="count" id="count-{{name}}">{{count}}</span><span class="label">{{name}}</span></div>{{/states}}
        </section>
        <p class="hint">Jobs submitted in the last 24 hours, by their state now.</p>
        <h2>Throughput, last hour</h2>
        <p><span id="ended-last-hour">{{endedLastHour}}</span> of them ended in the last hour; the busiest minute saw {{busiestMinute}}.
          (A job submitted earlier than 24 hours ago is not counted here.)</p>
        <svg class="chart" id="throughput" viewBox="0 0 600 100" preserveAspectRatio="none" role="img" aria-label="jobs ended per minute">
          {{#bars}}<rect x="{{x}}" y="{{y}}" width="9" height="{{height}}"><title>{{label}}</title></rect>{{/bars}}
        </svg>
        <h2>Queues</h2>
        <table class="grid" id="queue-summary">
          <thead><tr><th>Name</th><th>QueueId</th><th>State</th><th>Running</th><th>Waiting</th><th>Oldest waiting job</th></tr></thead>
          <tbody>
          {{#queues}}<tr><td>{{name}}</td><td class="mono">{{id}}</td><td><span class="state state-{{state}}">{{state}}</span></td>
            <td>{{running}}</td><td>{{waiting}}</td><td>{{oldestWaiting}}</td></tr>{{/queues}}
          </tbody>
        </table>
        {{/content}}{{/layout}}
        """

    static let dead = """
        {{<layout}}{{$content}}
        <form class="filters" method="get" action="/console/b/{{page.bucket}}/callbacks/dead" id="dead-filters">
          <label>Queue <select name="queue" id="dead-queue"><option value="">any</option>
            {{#filters.queues}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/filters.queues}}</select></label>
          <label>Endpoint <input name="endpoint" id="dead-endpoint" value="{{filters.endpoint}}" placeholder="host:port or mq:region"></label>
          <label>Created from <input type="datetime-local" name="from" id="dead-from" value="{{filters.from}}"></label>
          <label>to <input type="datetime-local" name="to" id="dead-to" value="{{filters.to}}"></label>
          <button id="apply-dead-filters">Filter</button>
        </form>
        <form method="post" action="/console/b/{{page.bucket}}/callbacks/dead/redrive" id="redrive-all">
          <input type="hidden" name="csrf" value="{{page.csrf}}">
          <input type="hidden" name="queue" value="{{filters.queue}}"><input type="hidden" name="endpoint" value="{{filters.endpoint}}">
          <input type="hidden" name="from" value="{{filters.from}}"><input type="hidden" name="to" value="{{filters.to}}">
          <button id="redrive-matching">Redrive all {{total}}matching</button>
        </form>
        <table class="grid" id="dead">
          <thead><tr><th>Event id</th><th>JobId / RunId</th><th>Endpoint</th><th>Attempts</th><th>Last error</th><th>Created</th><th></th></tr></thead>
          <tbody>
          {{#deliveries}}
          <tr data-event-id="{{id}}"><td class="mono">{{id}}</td><td class="mono"><a href="/console/b/{{page.bucket}}/{{#isRun}}runs{{/isRun}}{{^isRun}}jobs{{/isRun}}/{{jobID}}">{{jobID}}</a></td>
            <td class="mono">{{endpoint}}</td><td>{{attempts}}</td><td>{{lastError}}</td><td>{{created}}</td>
            <td><form method="post" action="/console/b/{{page.bucket}}/callbacks/dead/redrive">
              <input type="hidden" name="csrf" value="{{page.csrf}}"><input type="hidden" name="id" value="{{id}}">
              <input type="hidden" name="queue" value="{{filters.queue}}"><input type="hidden" name="endpoint" value="{{filters.endpoint}}">
              <input type="hidden" name="from" value="{{filters.from}}"><input type="hidden" name="to" value="{{filters.to}}">
              <button>Redrive</button></form></td></tr>
          {{/deliveries}}
          {{^deliveries}}<tr><td colspan="7" class="empty">No dead callback matches.</td></tr>{{/deliveries}}
          </tbody>
        </table>
        {{#more}}<p class="hint">Showing the oldest {{shown}}; more match, and redriving all matching takes every one.</p>{{/more}}
        {{/content}}{{/layout}}
        """
}
