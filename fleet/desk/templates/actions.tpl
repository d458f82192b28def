% rebase('base', title=title, nav=nav)
<section class="panel">
  <h1>操作记录 Actions</h1>
  <table class="grid-table actions">
    <tr><th>时间 Time</th><th>谁 Who</th><th>操作 What</th><th>对象 Target</th><th>结果 Outcome</th></tr>
% for a in actions:
    <tr id="a{{a['id']}}" data-kind="{{a['kind']}}" data-user="{{a['username']}}" data-outcome="{{a['outcome']}}">
      <td>{{local(a['at'], '%Y-%m-%d %H:%M:%S')}}</td><td>{{a['username']}}</td>
      <td>{{a['kind']}} {{('v' + str(a['detail'].get('version'))) if a['kind'] == 'push_config' else a['detail'].get('name', '') or ''}} {{a['detail'].get('note', '') if a['kind'] == 'ack' else ''}}</td>
      <td>{{'全部 all carts' if a['target'] == '_all' else a['target']}}</td>
      <td>{{a['outcome']}}{{': ' + a['error'] if a['error'] else ''}}</td></tr>
% end
  </table>
</section>
