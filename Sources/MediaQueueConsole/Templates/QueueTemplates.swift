/// CI's "Queues and Callbacks" tab: the queue list with its Operation column, and one queue's
/// settings and callback rule.
enum QueueTemplates {
    static let queues = """
        {{<layout}}{{$content}}
        <table class="grid" id="queues">
          <thead><tr>
            <th>Name</th><th>QueueId</th><th>State</th><th>MaxConcurrent</th><th>MaxSize</th><th>Running</th>
            <th>Waiting (JobLevel 0 / 1 / 2)</th><th>Callback</th><th>Operation</th>
          </tr></thead>
          <tbody>
          {{#queues}}
          <tr data-queue-id="{{id}}">
            <td>{{name}}</td><td class="mono">{{id}}</td>
            <td><span class="state state-{{state}}">{{state}}</span></td>
            <td>{{maxConcurrent}}</td><td>{{maxSize}}</td><td>{{running}}</td>
            <td>{{waiting0}} / {{waiting1}} / {{waiting2}}</td>
            <td>{{rule}}</td>
            <td class="operation">
              <form method="post" action="/console/b/{{page.bucket}}/queues/{{id}}/state">
                <input type="hidden" name="csrf" value="{{page.csrf}}">
                {{#paused}}<input type="hidden" name="state" value="Active"><button>Enable</button>{{/paused}}
                {{^paused}}<input type="hidden" name="state" value="Paused"><button>Pause</button>{{/paused}}
              </form>
              <a class="button" href="/console/b/{{page.bucket}}/queues/{{id}}#rule">Configure Callback Rule</a>
            </td>
          </tr>
          {{/queues}}
          </tbody>
        </table>
        {{/content}}{{/layout}}
        """

    static let queue = """
        {{<layout}}{{$content}}
        <p class="mono">{{queue.id}} · <span class="state state-{{queue.state}}">{{queue.state}}</span></p>
        <form class="card" method="post" action="/console/b/{{page.bucket}}/queues/{{queue.id}}/settings" id="settings-form">
          <h2>Limits</h2>
          <input type="hidden" name="csrf" value="{{page.csrf}}">
          <label>MaxConcurrent <input name="MaxConcurrent" id="MaxConcurrent" type="number" value="{{settings.maxConcurrent}}"></label>
          {{#settings.errors.MaxConcurrent}}<span class="field-error" id="error-MaxConcurrent">{{.}}</span>{{/settings.errors.MaxConcurrent}}
          <label>MaxSize <input name="MaxSize" id="MaxSize" type="number" value="{{settings.maxSize}}"></label>
          {{#settings.errors.MaxSize}}<span class="field-error" id="error-MaxSize">{{.}}</span>{{/settings.errors.MaxSize}}
          <button id="save-settings">Save limits</button>
        </form>

        <form class="card" method="post" action="/console/b/{{page.bucket}}/queues/{{queue.id}}/rule" id="rule">
          <h2>Callback rule</h2>
          <input type="hidden" name="csrf" value="{{page.csrf}}">
          <fieldset><legend>State</legend>
            <label><input type="radio" name="State" value="On" id="State-On"{{#rule.on}} checked{{/rule.on}}> On</label>
            <label><input type="radio" name="State" value="Off" id="State-Off"{{^rule.on}} checked{{/rule.on}}> Off</label>
          </fieldset>
          <fieldset><legend>Type</legend>
            <label><input type="radio" name="Type" value="Url" id="Type-Url"{{#rule.url}} checked{{/rule.url}}> Url</label>
            <label><input type="radio" name="Type" value="TDMQ" id="Type-TDMQ"{{#rule.tdmq}} checked{{/rule.tdmq}}> TDMQ</label>
          </fieldset>
          {{#rule.errors.Type}}<span class="field-error" id="error-Type">{{.}}</span>{{/rule.errors.Type}}
          <label>Url <input name="Url" id="Url" value="{{rule.urlValue}}" size="60"></label>
          {{#rule.errors.Url}}<span class="field-error" id="error-Url">{{.}}</span>{{/rule.errors.Url}}
          <label>MqMode <select name="MqMode" id="MqMode">
            <option value="Queue"{{#rule.queueMode}} selected{{/rule.queueMode}}>Queue</option>
            <option value="Topic"{{#rule.topicMode}} selected{{/rule.topicMode}}>Topic</option>
          </select></label>
          {{#rule.errors.MqMode}}<span class="field-error" id="error-MqMode">{{.}}</span>{{/rule.errors.MqMode}}
          <label>MqName <input name="MqName" id="MqName" value="{{rule.mqName}}"></label>
          {{#rule.errors.MqName}}<span class="field-error" id="error-MqName">{{.}}</span>{{/rule.errors.MqName}}
          <label>MqRegion <input name="MqRegion" id="MqRegion" value="{{rule.mqRegion}}"></label>
          <fieldset><legend>Event</legend>
            <label><input type="checkbox" name="Event" value="TaskFinish" id="Event-TaskFinish"{{#rule.taskFinish}} checked{{/rule.taskFinish}}> TaskFinish</label>
            <label><input type="checkbox" name="Event" value="WorkflowFinish" id="Event-WorkflowFinish"{{#rule.workflowFinish}} checked{{/rule.workflowFinish}}> WorkflowFinish</label>
            <label><input type="checkbox" name="Event" value="TaskProgress" id="Event-TaskProgress"{{#rule.taskProgress}} checked{{/rule.taskProgress}}> TaskProgress</label>
          </fieldset>
          {{#rule.errors.Event}}<span class="field-error" id="error-Event">{{.}}</span>{{/rule.errors.Event}}
          <label>ResultFormat <select name="ResultFormat" id="ResultFormat">
            <option value="XML"{{#rule.formatXML}} selected{{/rule.formatXML}}>XML</option>
            <option value="JSON"{{#rule.formatJSON}} selected{{/rule.formatJSON}}>JSON</option>
          </select></label>
          <button id="save-rule">Save callback rule</button>
        </form>
        {{/content}}{{/layout}}
        """
}
