/// The frame of every console page, and the sign-in page.
enum LayoutTemplates {
    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{page.title}} · MediaQueue</title>
        <link rel="stylesheet" href="/console/assets/console.css">
        </head>
        <body>
        <header class="top">
          <a class="brand" href="/console">MediaQueue</a>
          {{#page.bucket}}
          <form class="bucket-picker" method="get" action="/console/go">
            <label>Bucket <select name="bucket" id="bucket-picker">
            {{#page.buckets}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/page.buckets}}
            </select></label>
            <noscript><button>Go</button></noscript>
          </form>
          <nav>
            <a href="/console/b/{{page.bucket}}"{{#page.onOverview}} class="active"{{/page.onOverview}}>Overview</a>
            <a href="/console/b/{{page.bucket}}/queues"{{#page.onQueues}} class="active"{{/page.onQueues}}>Queues and Callbacks</a>
            <a href="/console/b/{{page.bucket}}/jobs"{{#page.onJobs}} class="active"{{/page.onJobs}}>Jobs</a>
            <a href="/console/b/{{page.bucket}}/workflows"{{#page.onWorkflows}} class="active"{{/page.onWorkflows}}>Workflows</a>
            <a href="/console/b/{{page.bucket}}/callbacks/dead"{{#page.onDead}} class="active"{{/page.onDead}}>Dead callbacks</a>
          </nav>
          {{/page.bucket}}
          {{#page.user}}
          <form class="signout" method="post" action="/console/logout">
            <input type="hidden" name="csrf" value="{{page.csrf}}">
            <span class="user">{{page.user}}</span> <button class="link">Sign out</button>
          </form>
          {{/page.user}}
        </header>
        <main>
        <h1>{{page.title}}</h1>
        {{#page.notice}}<p class="notice" id="notice">{{page.notice}}</p>{{/page.notice}}
        {{#page.error}}<p class="failure" id="page-error">{{page.error}}</p>{{/page.error}}
        {{$content}}{{/content}}
        </main>
        <script src="/console/assets/console.js"></script>
        </body>
        </html>
        """

    static let login = """
        {{<layout}}{{$content}}
        <form class="card login" method="post" action="/console/login" id="login-form">
          <p>Sign in with a SecretId and SecretKey that may use the API, or with the admin token.</p>
          <label>SecretId <input name="secretId" id="secretId" autocomplete="username" value="{{secretID}}"></label>
          <label>SecretKey <input name="secretKey" id="secretKey" type="password" autocomplete="current-password"></label>
          <p class="or">or</p>
          <label>Admin token <input name="adminToken" id="adminToken" type="password"></label>
          <button id="sign-in">Sign in</button>
        </form>
        {{/content}}{{/layout}}
        """

    static let message = """
        {{<layout}}{{$content}}
        <p id="message">{{message}}</p>
        <p><a href="/console">Back to the console</a></p>
        {{/content}}{{/layout}}
        """
}
