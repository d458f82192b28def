% rebase('base', title=title, nav=nav)
<section class="toolbar">
  <form class="filters" method="get" action="/fleet">
% for key, zh, en in [('all', '全部', 'All'), ('attention', '需处理', 'Attention'), ('offline', '离线', 'Offline'), ('online', '在线', 'Online')]:
    <button class="tab {{'here' if filter == key else ''}}" name="filter" value="{{key}}">{{zh}} {{en}}</button>
% end
    <input type="search" name="q" value="{{q}}" placeholder="车号 cart id" maxlength="32" aria-label="车号 cart id">
  </form>
% if session.can_act:
  <a class="btn" href="/act/push?target=_all">推送车队配置 Push fleet config</a>
% end
</section>
<div id="live" data-poll="/fleet/cards">
% include('cards')
</div>
<nav class="pager">
% if page > 0:
  <a href="/fleet?filter={{filter}}&q={{q}}&page={{page - 1}}">← 上一页 Previous</a>
% end
% if more:
  <a href="/fleet?filter={{filter}}&q={{q}}&page={{page + 1}}">下一页 Next →</a>
% end
</nav>
