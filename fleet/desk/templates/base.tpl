<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>{{title}} · 车队管理台 Fleet desk</title>
<link rel="stylesheet" href="/static/desk.css">
<script src="/static/desk.js" defer></script>
</head>
<body class="page-{{get('nav', 'plain')}}">
<header class="bar">
  <a class="brand" href="/fleet"><span class="zh">车队管理台</span> <span class="en">Fleet desk</span></a>
% if session:
  <nav>
% for key, zh, en in [('fleet', '车队', 'Fleet'), ('alarms', '警报', 'Alarms'), ('usage', '使用统计', 'Usage'), ('actions', '操作记录', 'Actions')]:
    <a href="/{{key}}" class="{{'here' if get('nav') == key else ''}}"><span class="zh">{{zh}}</span> <span class="en">{{en}}</span></a>
% end
  </nav>
  <form class="who" method="post" action="/logout">
    <span class="user" data-role="{{session.role}}">{{session.username}} · {{'经理 manager' if session.can_act else '只读 viewer'}}</span>
    <input type="hidden" name="csrf" value="{{session.csrf}}">
    <button class="btn small" type="submit">退出 Log out</button>
  </form>
% end
</header>
<main>
{{!base}}
</main>
</body>
</html>
