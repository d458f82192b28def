% rebase('base', title=title, nav=nav)
<section class="toolbar">
  <form class="filters" method="get" action="/alarms">
    <button class="tab {{'here' if show == 'open' else ''}}" name="show" value="open">未确认 Unacknowledged</button>
    <button class="tab {{'here' if show == 'all' else ''}}" name="show" value="all">全部 All</button>
    <input type="search" name="cart" value="{{cart}}" placeholder="车号 cart id" maxlength="32" aria-label="车号 cart id">
  </form>
</section>
<section class="panel">
% include('alarm_rows', alarms=alarms, back='/alarms?show=' + show)
</section>
