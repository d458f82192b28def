% rebase('base', title=title, nav='refused')
<section class="panel refused">
  <h1>{{zh}}</h1>
  <p class="en">{{en}}</p>
  <p><a href="/fleet">← 车队 Fleet</a></p>
</section>
